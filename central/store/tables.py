"""ORM tables of the incident store. Migrations in ``central/store/migrations`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite itself keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_key: Mapped[str] = mapped_column(String(200), unique=True)
    hazard: Mapped[str] = mapped_column(String(40), index=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str | None] = mapped_column(String(64))
    # Open311 reports have no camera or edge.
    camera: Mapped[str | None] = mapped_column(String(64), index=True)
    zone: Mapped[str | None] = mapped_column(String(64))
    grid_cell: Mapped[str | None] = mapped_column(String(64))
    # Workflow state (received, triage, ... closed) is the centre's; condition is the camera's.
    state: Mapped[str] = mapped_column(String(20), default="received", index=True)
    condition: Mapped[str] = mapped_column(String(10), default="active")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    last_observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    latest_snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    # When the event that brought the latest snapshot was observed: a later event's snapshot
    # replaces it, an earlier one arriving late (from another worker, an outbox replay) does not.
    latest_snapshot_observed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    assigned_worker: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # -- workflow (migration 0003) --
    source: Mapped[str] = mapped_column(String(16), default="camera", server_default="camera")
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    assigned_unit: Mapped[str | None] = mapped_column(String(64), index=True)
    episode_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    rework_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalated_to: Mapped[str | None] = mapped_column(String(64))
    supervised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The deadline clock of the current stage; the scheduler colours it and escalates when red.
    stage: Mapped[str | None] = mapped_column(String(16))
    stage_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stage_deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    deadline_color: Mapped[str | None] = mapped_column(String(8))
    ever_overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(20))
    merged_into: Mapped[int | None] = mapped_column(Integer)
    feedback_by: Mapped[str | None] = mapped_column(String(64))
    # While set, the retention purge keeps the incident's evidence whatever its age (central/evidence/retention.py).
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(10))
    seq: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class Evidence(Base):
    """One stored blob; the file lives at ``<evidence dir>/<sha[:2]>/<sha>``."""

    __tablename__ = "evidence"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Who uploaded it (a feedback photo); None for what edges sent. Only the uploader may attach it.
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    # Set when the retention purge deleted the bytes; the row stays so records can say what was there.
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EvidenceHold(Base):
    """Something outside the incident store that needs a blob kept (a training dataset, an
    investigation): the retention purge skips held evidence until every hold is released."""

    __tablename__ = "evidence_holds"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginAttempt(Base):
    """Every failed (and, for the lockout's reset, successful) login: throttling reads it back."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)


class EvidenceRef(Base):
    """What an event says it carries: kept even before the blob arrives, so the link can follow."""

    __tablename__ = "evidence_refs"
    __table_args__ = (UniqueConstraint("event_row_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_row_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)


class IncidentEvidence(Base):
    """An incident and a blob that is actually stored."""

    __tablename__ = "incident_evidence"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), primary_key=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # edge (from an event), photo (a worker's feedback), check (the edge's recheck snapshot)
    kind: Mapped[str] = mapped_column(String(10), default="edge", server_default="edge")


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # at most ingest_apply.DEAD_LETTER_PREFIX bytes
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # The whole payload as received (rows from before 0005: NULL, their payload is whole).
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(100))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    # Users dropped from the site configuration are disabled, not deleted: records may name them.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    grid: Mapped[list[str] | None] = mapped_column(JSON)
    unit: Mapped[str | None] = mapped_column(String(64))
    # Bumped by a password, role, scope or activation change: tokens carry it, so older ones die at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "file": the site file owns this user (start-up re-applies it; the API refuses to edit it);
    # "api": created through the API and owned by the database (the site file leaves it alone).
    managed_by: Mapped[str] = mapped_column(String(8), default="file", server_default="file")


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Null until the notification went out: a restart re-sends these.
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EdgeStatusRow(Base):
    __tablename__ = "edge_status"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[str | None] = mapped_column(String(64))
    cameras: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # From the last heartbeat (central.fleet.edge_health): what an operator must know about this edge.
    problems: Mapped[list[str] | None] = mapped_column(JSON)


class CameraHealthRow(Base):
    __tablename__ = "camera_health"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    cause: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IncidentAlias(Base):
    """An edge episode (its incident_key) folded into an older open incident."""

    __tablename__ = "incident_aliases"

    incident_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)


class AuditRecord(Base):
    """Append-only, hash-chained per incident: ``hash = sha256(prev_hash | canonical fields)``."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("incident_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(JSON)


class ActuationRow(Base):
    """What an edge did to an actuator (sharpeyes.actuation/1), as it said it: door holds, their
    renewals and releases. Linked to an incident by the hazard's incident_key (an actuation may
    arrive before the event that opens the incident)."""

    __tablename__ = "actuations"
    # The console's "what is each actuator doing now" reads the newest row per actuator.
    __table_args__ = (Index("ix_actuations_edge_actuator_at", "site", "edge", "actuator", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    actuator: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(20))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    incident_key: Mapped[str | None] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    held_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    by: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CommandRow(Base):
    """A command sent to an edge (recheck, config) and, once it came, its reply."""

    __tablename__ = "commands"

    command_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(10), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    errors: Mapped[list[str] | None] = mapped_column(JSON)
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Suppression(Base):
    """Like an Alertmanager silence: new incidents matching it are filed closed, not dispatched."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str | None] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64), index=True)
    zone: Mapped[str | None] = mapped_column(String(64))
    hazard: Mapped[str | None] = mapped_column(String(40))
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class GridNode(Base):
    """The grid tree, seeded from the site configuration and editable through the API."""

    __tablename__ = "grid_nodes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))
    parent: Mapped[str | None] = mapped_column(String(64))
    workers: Mapped[list[str]] = mapped_column(JSON)


class Lease(Base):
    """A named leader lease (migration 0004): the one central process doing singleton work holds it.

    ``central.store.lease.LeaderLease`` takes and renews it with conditional writes; a row whose
    ``expires_at`` has passed is free for anyone.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a mapped class: bulk INSERTs through it skip the ORM's per-row work."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table
