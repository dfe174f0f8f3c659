"""Pydantic response models of the v1 REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from central.api.params import MAX_ID


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    username: str
    role: str
    worker: str | None
    unit: str | None = None
    grid: list[str] = []
    scope: list[str] | None = None
    demo: bool = False


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_key: str
    hazard: str
    title: str
    site: str
    edge: str | None
    camera: str | None
    zone: str | None
    grid_cell: str | None
    state: str
    condition: str
    started_at: datetime
    last_observed_at: datetime
    ended_at: datetime | None
    max_score: float
    event_count: int
    latest_snapshot_sha256: str | None
    assigned_worker: str | None
    source: str = "camera"
    description: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    assigned_unit: str | None = None
    episode_count: int = 1
    rework_count: int = 0
    escalation_level: int = 0
    escalated_to: str | None = None
    supervised: bool = False
    stage: str | None = None
    stage_started_at: datetime | None = None
    stage_deadline_at: datetime | None = None
    deadline_color: str | None = None
    close_reason: str | None = None
    closed_at: datetime | None = None
    merged_into: int | None = None
    allowed_actions: list[str] = []


class IncidentList(BaseModel):
    total: int
    items: list[IncidentOut]


class EvidenceOut(BaseModel):
    sha256: str
    content_type: str
    size: int
    available: bool
    url: str
    kind: str = "edge"


class EventOut(BaseModel):
    event_id: str
    phase: str
    seq: int
    score: float
    observed_at: datetime
    received_at: datetime
    objects: list[dict[str, Any]]
    evidence: list[str]


class FeedbackOut(BaseModel):
    actor: str
    at: datetime
    note: str
    photos: list[str]


class CheckOut(BaseModel):
    command_id: str
    mode: str
    actor: str
    sent_at: datetime
    replied_at: datetime | None
    status: str
    present: bool | None
    snapshot_sha256: str | None
    errors: list[str]


class ActuationOut(BaseModel):
    """One thing the edge did to an actuator for this incident (docs/actuation.md)."""

    model_config = ConfigDict(from_attributes=True)

    event_id: str
    actuator: str
    kind: str
    camera: str
    zone: str
    action: str
    reason: str | None
    ok: bool
    error: str | None
    at: datetime
    held_since: datetime | None
    latency_ms: float | None
    by: str | None


class IncidentDetail(IncidentOut):
    events: list[EventOut]
    evidence: list[EvidenceOut]
    feedback: list[FeedbackOut] = []
    checks: list[CheckOut] = []
    actuations: list[ActuationOut] = []
    holding: list[str] = Field([], description="actuators holding for this incident now (door hold, warning)")
    can_release_hold: bool = False


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(min_length=3, max_length=500, description="why the hold is released, e.g. false alarm: a pram")


class ReleaseOut(BaseModel):
    command_id: str
    edge: str
    args: dict[str, str]


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str | None = Field(None, max_length=2000)
    note: str | None = Field(None, max_length=4000)
    photos: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    # Bounded like the columns they end up in (PostgreSQL refuses longer strings, SQLite larger ints).
    worker: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, max_length=64)
    mode: str = Field("person", max_length=20)
    target_id: int | None = Field(None, ge=1, le=MAX_ID)
    close_reason: str | None = Field(None, max_length=20)


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    payload: dict[str, Any]
    payload_sha256: str
    prev_hash: str
    hash: str


class UploadOut(BaseModel):
    sha256: str
    content_type: str
    size: int
    url: str


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    reason: str
    received_at: datetime
    size: int
    payload_preview: str
    payload_sha256: str | None = None
    truncated: bool = False


class DeadLetterList(BaseModel):
    total: int
    items: list[DeadLetterOut]


class ReadyOut(BaseModel):
    """Whether this central can take events now, and if not, why (one line per problem)."""

    ready: bool
    problems: list[str]
    database_writable: bool
    broker_connected: bool | None  # None: this process does not ingest (serve --no-ingest)
    ingest_backlog: int | None  # messages received from the broker and not yet committed
    leader: dict[str, bool]  # lease name -> whether this process holds it (informational)
    # "ready", or why faces cannot be blurred (images outside the desk are then withheld; informational)
    redaction: str = "ready"


class HealthOut(BaseModel):
    status: str
    database: bool
    mqtt_connected: bool | None
    demo: bool = False  # serve --demo: weak secrets accepted; the console says so on every page


Unit = Annotated[float, Field(ge=0, le=1)]


class LabelBox(BaseModel):
    label: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_ -]+$")
    box: tuple[Unit, Unit, Unit, Unit] = Field(description="x1, y1, x2, y2 normalised to 0..1, x1 < x2, y1 < y2")

    @field_validator("box")
    @classmethod
    def _inside(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
            raise ValueError("box must be x1 < x2 and y1 < y2 inside 0..1")
        return box


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    boxes: list[LabelBox] = Field(max_length=200)


class LabelOut(BaseModel):
    frame_sha256: str
    verdict: str | None
    boxes: list[LabelBox]
    reviewer: str | None
    at: str | None
