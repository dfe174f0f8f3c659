"""Every read of evidence on record: appended to the incident's hash-chained audit (action
``evidence_read``), so "who looked" is as tamper-evident as the workflow itself, and read back for
the access log (admin, supervisor) and the incident page."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from central.store.tables import AuditRecord
from central.workflow import audit

access_log = logging.getLogger("central.access")

READ_ACTION = "evidence_read"
# Audit records that are not steps of the workflow (statistics leave them out).
# The actuation module's release request is one too (central/fleet/actuations.py, kept in step by its test).
RECORD_ONLY_ACTIONS = (READ_ACTION, "legal_hold", "legal_hold_released", "evidence_purged", "release_hold")
ATTEMPTS = 5  # two reads of one incident at once race for the same audit slot; the loser retries


@dataclass(frozen=True, slots=True)
class EvidenceRead:
    username: str
    role: str
    sha256: str
    variant: str  # "original" or "redacted"
    reason: str | None
    address: str
    at: datetime


def record_reads(session: Session, incident_ids: Iterable[int], read: EvidenceRead) -> None:
    """One audit record per incident the blob belongs to (and the reader may see); committed here."""
    ids = sorted(set(incident_ids))
    payload = {"sha256": read.sha256, "variant": read.variant, "role": read.role, "address": read.address}
    for attempt in range(ATTEMPTS):
        try:
            for incident_id in ids:
                audit.append(session, incident_id, read.at, read.username, READ_ACTION, None, None, read.reason, payload)
            session.commit()
            return
        except IntegrityError:
            session.rollback()
            if attempt == ATTEMPTS - 1:
                raise
        finally:
            audit.forget_tips(session)


def reads_query(incident_id: int | None = None, since: datetime | None = None,
                until: datetime | None = None) -> Select[AuditRecord]:
    query = select(AuditRecord).where(AuditRecord.action == READ_ACTION)
    if incident_id is not None:
        query = query.where(AuditRecord.incident_id == incident_id)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    if until is not None:
        query = query.where(AuditRecord.at < until)
    return query.order_by(AuditRecord.at.desc(), AuditRecord.id.desc())


def read_row(r: AuditRecord) -> dict[str, object]:
    p = r.payload or {}
    return {"at": r.at.isoformat(), "incident_id": r.incident_id, "username": r.actor, "role": p.get("role"),
            "sha256": p.get("sha256"), "variant": p.get("variant"), "reason": r.reason, "address": p.get("address"),
            "seq": r.seq, "hash": r.hash}


COLUMNS = ("at", "incident_id", "username", "role", "sha256", "variant", "reason", "address", "seq", "hash")


def as_csv(rows: Iterable[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
