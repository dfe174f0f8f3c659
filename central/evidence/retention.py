"""The retention purge: evidence deleted once the policy says it may go, each deletion audited.

What goes: the bytes of evidence whose every incident is closed, not under legal hold, and closed
longer ago than the policy allows for its hazard and outcome (RetentionConfig in the workflow
file); worker photos never attached to an incident, after a short while; login records after
their (at least three-year) period. What stays: anything an open or held incident, or a hold
(a training dataset: ``evidence_holds``), still needs; the evidence row itself (marked
``purged_at``) and every audit record, so the chain still verifies and says what was there.

``plan`` decides (reads only, for ``--dry-run`` too); ``apply`` deletes and records. The
scheduler runs both under the deadlines lease, so one process purges at a time.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from central.evidence.store import EvidenceBackend
from central.store.tables import Evidence, EvidenceHold, EvidenceRef, Incident, IncidentEvidence, LoginAttempt
from central.workflow import audit
from central.workflow.config import RetentionConfig
from central.workflow.rules import CLOSED
from central.workflow.scheduler import PeriodicPurge
from central.workflow.vocabulary import CloseReason

log = logging.getLogger(__name__)

PURGE_ACTION = "evidence_purged"
DISMISSED_OUTCOMES = frozenset({CloseReason.FALSE_ALARM, CloseReason.SUPPRESSED, CloseReason.DUPLICATE})


@dataclass(frozen=True, slots=True)
class PurgeItem:
    sha256: str
    size: int
    incidents: tuple[int, ...]
    why: str


@dataclass(frozen=True, slots=True)
class PurgePlan:
    items: list[PurgeItem]
    login_attempts_before: datetime

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)


def outcome_of(incident: Incident) -> str:
    return "dismissed" if incident.close_reason in DISMISSED_OUTCOMES else "closed"


def expires_at(incident: Incident, policy: RetentionConfig) -> datetime | None:
    """When the incident's evidence may go; None while it must stay (open, or under legal hold)."""
    if incident.state != CLOSED or incident.legal_hold or incident.closed_at is None:
        return None
    rule = policy.for_hazard(incident.hazard)
    keep = rule.dismissed if outcome_of(incident) == "dismissed" else rule.closed
    return incident.closed_at + timedelta(seconds=keep)


def plan(session: Session, policy: RetentionConfig, now: datetime) -> PurgePlan:
    links: dict[str, set[int]] = defaultdict(set)
    for sha, incident_id in session.execute(select(EvidenceRef.sha256, EvidenceRef.incident_id)):
        links[sha].add(incident_id)
    for sha, incident_id in session.execute(select(IncidentEvidence.sha256, IncidentEvidence.incident_id)):
        links[sha].add(incident_id)
    held = set(session.scalars(select(EvidenceHold.sha256)))
    incidents = {i.id: i for i in session.scalars(select(Incident))}
    items: list[PurgeItem] = []
    for blob in session.scalars(select(Evidence).where(Evidence.purged_at.is_(None)).order_by(Evidence.received_at)):
        if blob.sha256 in held:
            continue
        ids = links.get(blob.sha256, set())
        if not ids:
            if blob.uploaded_by is not None and blob.received_at + timedelta(seconds=policy.unattached_uploads) <= now:
                items.append(PurgeItem(blob.sha256, blob.size, (), "an upload never attached to an incident"))
            continue
        deadlines = [expires_at(incidents[i], policy) if i in incidents else None for i in ids]
        if all(d is not None and d <= now for d in deadlines):
            reasons = sorted({f"{incidents[i].hazard} {outcome_of(incidents[i])}" for i in ids})
            items.append(PurgeItem(blob.sha256, blob.size, tuple(sorted(ids)), "retention ran out: " + ", ".join(reasons)))
    return PurgePlan(items, now - timedelta(seconds=policy.login_attempts))


def apply(session: Session, evidence: EvidenceBackend, purge: PurgePlan, now: datetime) -> int:
    """Delete what the plan lists, one blob per transaction: bytes first, then the mark and the
    audit record (a crash in between leaves a row whose bytes are gone; the next run marks it)."""
    done = 0
    for item in purge.items:
        evidence.delete(item.sha256)
        row = session.get(Evidence, item.sha256)
        if row is None or row.purged_at is not None:
            continue
        row.purged_at = now
        for incident_id in item.incidents:
            audit.append(session, incident_id, now, "retention", PURGE_ACTION, None, None, item.why,
                         {"sha256": item.sha256, "size": item.size})
        session.commit()
        audit.forget_tips(session)
        done += 1
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < purge.login_attempts_before))
    session.commit()
    if done:
        log.info("retention: deleted %d evidence blob(s), %d bytes", done, purge.bytes)
    return done


def retention_purge(policy: RetentionConfig, evidence: EvidenceBackend) -> PeriodicPurge | None:
    """The purge as the deadline scheduler runs it (on its lease, every ``policy.interval_s``);
    None when the policy is off."""
    if not policy.enabled:
        return None
    return PeriodicPurge(policy.interval_s, lambda session, now: _purge(session, evidence, policy, now))


def _purge(session: Session, evidence: EvidenceBackend, policy: RetentionConfig, now: datetime) -> None:
    apply(session, evidence, plan(session, policy, now), now)
