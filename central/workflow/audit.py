"""Append-only, hash-chained audit records per incident, and their verification.

Each record's hash covers the previous record's hash and the record's own fields in canonical
JSON, so editing, deleting or reordering any row breaks the chain from there on. Records are
numbered per incident (unique ``(incident_id, seq)``): two writers racing for the same slot get
an IntegrityError and the ingest's retry takes the next one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from central.store.tables import AuditRecord, table_of

GENESIS = "0" * 64
TIPS_KEY = "sharpeyes.audit_tips"
DEFERRED_KEY = "sharpeyes.audit_deferred"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, incident_id: int, seq: int, at: datetime, actor: str, action: str,
                from_state: str | None, to_state: str | None, reason: str | None, payload_sha256: str) -> str:
    body = canonical([incident_id, seq, _iso(at), actor, action, from_state, to_state, reason, payload_sha256])
    return hashlib.sha256((prev_hash + "|" + body).encode()).hexdigest()


def append(session: Session, incident_id: int, at: datetime, actor: str, action: str,
           from_state: str | None, to_state: str | None, reason: str | None = None,
           payload: dict[str, Any] | None = None) -> None:
    payload = payload or {}
    # The chain's tip per incident is remembered for the session's transaction, so a burst of
    # records (an incident received, registered and dispatched at once) reads it once.
    tips: dict[int, tuple[int, str]] = session.info.setdefault(TIPS_KEY, {})
    tip = tips.get(incident_id)
    if tip is None:
        last = session.execute(
            select(AuditRecord.seq, AuditRecord.hash)
            .where(AuditRecord.incident_id == incident_id)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        ).first()
        tip = (last[0], last[1]) if last else (0, GENESIS)
    seq, prev = tip[0] + 1, tip[1]
    payload_sha = hashlib.sha256(canonical(payload).encode()).hexdigest()
    digest = record_hash(prev, incident_id, seq, at, actor, action, from_state, to_state, reason, payload_sha)
    row = dict(
        incident_id=incident_id, seq=seq, at=at, actor=actor, action=action, from_state=from_state,
        to_state=to_state, reason=reason, payload=payload, payload_sha256=payload_sha, prev_hash=prev,
        hash=digest,
    )
    deferred: list[dict[str, Any]] | None = session.info.get(DEFERRED_KEY)
    if deferred is not None:
        deferred.append(row)
    else:
        session.add(AuditRecord(**row))
    tips[incident_id] = (seq, digest)


def defer(session: Session) -> None:
    """Collect this transaction's records as plain rows until `write_deferred` (a burst of new
    incidents writes thousands: one multi-row INSERT instead of an ORM object each)."""
    session.info.setdefault(DEFERRED_KEY, [])


def write_deferred(session: Session) -> None:
    """Insert the records collected since `defer`; they stay deferred for the transaction."""
    rows: list[dict[str, Any]] = session.info.get(DEFERRED_KEY) or []
    if rows:
        session.execute(insert(table_of(AuditRecord)), rows)  # Core: no ORM bulk path
        rows.clear()


def start_chain(session: Session, incident_id: int) -> None:
    """A new incident has no records yet: its first append need not ask the database."""
    session.info.setdefault(TIPS_KEY, {}).setdefault(incident_id, (0, GENESIS))


def forget_tips(session: Session) -> None:
    """Call after commit or rollback: another writer may extend the chains from now on."""
    session.info.pop(TIPS_KEY, None)
    session.info.pop(DEFERRED_KEY, None)
    session.info.pop("sharpeyes.silences", None)


@dataclass(frozen=True, slots=True)
class Break:
    incident_id: int
    seq: int
    record_id: int
    problem: str


def verify_rows(rows: list[AuditRecord]) -> list[Break]:
    """Check chains; rows must be ordered by (incident_id, seq)."""
    breaks: list[Break] = []
    prev_by_incident: dict[int, tuple[int, str]] = {}
    for r in rows:
        prev_seq, prev_hash = prev_by_incident.get(r.incident_id, (0, GENESIS))
        if r.seq != prev_seq + 1:
            breaks.append(Break(r.incident_id, r.seq, r.id, f"seq {r.seq} follows {prev_seq}: a record is missing"))
        if r.prev_hash != prev_hash:
            breaks.append(Break(r.incident_id, r.seq, r.id, "prev_hash does not match the previous record"))
        payload_sha = hashlib.sha256(canonical(r.payload).encode()).hexdigest()
        if payload_sha != r.payload_sha256:
            breaks.append(Break(r.incident_id, r.seq, r.id, "payload was changed (payload_sha256 mismatch)"))
        expected = record_hash(r.prev_hash, r.incident_id, r.seq, r.at, r.actor, r.action, r.from_state,
                               r.to_state, r.reason, r.payload_sha256)
        if expected != r.hash:
            breaks.append(Break(r.incident_id, r.seq, r.id, "fields were changed (hash mismatch)"))
        prev_by_incident[r.incident_id] = (r.seq, r.hash)
    return breaks


def verify(session: Session, incident_id: int | None = None) -> tuple[int, list[Break]]:
    query = select(AuditRecord).order_by(AuditRecord.incident_id, AuditRecord.seq)
    if incident_id is not None:
        query = query.where(AuditRecord.incident_id == incident_id)
    rows = list(session.scalars(query))
    return len(rows), verify_rows(rows)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    forget_tips(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: object) -> None:
    forget_tips(session)
