"""Payload models of the v1 contract. Every message on the wire is one of these."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from broker.actuatorconfig import ActuatorKind
from broker.topics import ID_PATTERN

EVENT_SCHEMA: Final = "sharpeyes.event/1"
HEALTH_SCHEMA: Final = "sharpeyes.camera-health/1"
STATUS_SCHEMA: Final = "sharpeyes.edge-status/1"
TASK_SCHEMA: Final = "sharpeyes.task/1"
COMMAND_SCHEMA: Final = "sharpeyes.command/1"
REPLY_SCHEMA: Final = "sharpeyes.reply/1"
RECEIPT_SCHEMA: Final = "sharpeyes.receipt/1"
HELLO_SCHEMA: Final = "sharpeyes.hello/1"
ACTUATION_SCHEMA: Final = "sharpeyes.actuation/1"
# The capability an edge and central name when they speak end-to-end receipts.
RECEIPTS_CAPABILITY: Final = "receipts/1"

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$", max_length=64)]
M = TypeVar("M", bound=BaseModel)
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (RFC 3339, UTC)")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_require_utc)]


class HazardKind(StrEnum):
    FIRE_LANE_BLOCKED = "fire_lane_blocked"
    EBIKE_INDOOR = "ebike_indoor"
    ZONE_OCCUPANCY = "zone_occupancy"
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_TAMPERED = "camera_tampered"


class Phase(StrEnum):
    START = "start"
    UPDATE = "update"
    END = "end"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Message(_Strict):
    """A whole message on the wire (not a part of one), in its three forms: ``to_wire()`` the bytes
    published, ``to_json()`` the same as text, ``to_wire_dict()`` the same as a JSON-ready dict."""

    # Actuation records have always left unset fields out and the other messages never have; a flag
    # per message, rather than one rule for all, keeps the bytes already on the wire as they were.
    wire_omits_none: ClassVar[bool] = False

    def to_wire(self) -> bytes:
        return self.to_json().encode()

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=self.wire_omits_none)

    def to_wire_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=self.wire_omits_none)


class DetectedObject(_Strict):
    label: str
    score: float = Field(ge=0.0, le=1.0)
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 normalised to 0..1")
    track_id: int | None = None

    @field_validator("box")
    @classmethod
    def _box_in_unit_square(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        if not all(0.0 <= v <= 1.0 for v in box):
            raise ValueError("box coordinates must be normalised to 0..1")
        if x2 < x1 or y2 < y1:
            raise ValueError("box must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
        return box


class EvidenceRef(_Strict):
    sha256: Sha256
    content_type: Literal["image/jpeg", "video/mp4"]
    bytes: int = Field(ge=1)


class ModelRef(_Strict):
    name: str
    sha256: Sha256


class HazardEvent(_Message):
    """One hazard event: the start, an update or the end of one hazard episode."""

    schema_: Literal["sharpeyes.event/1"] = Field(EVENT_SCHEMA, alias="schema")
    event_id: UUID
    incident_key: str = Field(min_length=1, max_length=200)
    hazard: HazardKind
    phase: Phase
    site: Id
    edge: Id
    camera: Id
    zone: Id | None = None
    started_at: UtcTime
    observed_at: UtcTime
    seq: int = Field(ge=0)
    score: float = Field(ge=0.0, le=1.0)
    objects: list[DetectedObject] = Field(default_factory=list)
    evidence: list[EvidenceRef] = Field(default_factory=list)
    model: ModelRef | None = None
    gb28181_channel_id: Annotated[str, Field(pattern=r"^\d{20}$")] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _times_in_order(self) -> HazardEvent:
        if self.observed_at < self.started_at:
            raise ValueError("observed_at is before started_at")
        return self


class HealthState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    TAMPERED = "tampered"


class CameraHealth(_Message):
    schema_: Literal["sharpeyes.camera-health/1"] = Field(HEALTH_SCHEMA, alias="schema")
    site: Id
    edge: Id
    camera: Id
    state: HealthState
    since: UtcTime
    cause: str | None = None
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EdgeStatus(_Message):
    """Retained on the status topic. The last will carries state ``offline``."""

    schema_: Literal["sharpeyes.edge-status/1"] = Field(STATUS_SCHEMA, alias="schema")
    site: Id
    edge: Id
    state: Literal["online", "offline"]
    at: UtcTime
    version: str | None = None
    cameras: list[str] = Field(default_factory=list)
    heartbeat: EdgeHeartbeat | None = None
    # What this edge speaks beyond the v1 basics (receipts/1: it keeps every event and evidence blob
    # until central's receipt).
    capabilities: list[str] = Field(default_factory=list)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CameraFigures(_Strict):
    """Per-camera figures in the heartbeat, over the last heartbeat interval."""

    state: str
    frames_in: int = Field(ge=0)
    frames_decoded: int = Field(ge=0)
    samples: int = Field(ge=0)
    detect_fps: float = Field(ge=0)
    reconnects: int = Field(ge=0)
    seconds_since_frame: float | None = None
    model: ModelRef | None = None  # the detector the camera runs now (a promotion shows here first)


class ActuatorFigures(_Strict):
    """Per-actuator figures in the heartbeat."""

    state: Literal["idle", "held", "failing"]
    holds: int = Field(0, ge=0, description="holds since the edge started")
    failures: int = Field(0, ge=0, description="commands the device did not acknowledge since the edge started")
    last_error: str | None = Field(None, max_length=500)


class ConfigApplied(_Strict):
    """The configuration an edge runs (broker/desiredstate.py)."""

    version: int | None = Field(None, ge=1, description="central's number of it (its configuration history); "
                                "null for one central never numbered, such as the site file's")
    hash: str = Field(pattern=r"^[0-9a-f]{12}$", description="its content hash (EdgeConfigMessage.version)")
    since: UtcTime = Field(description="when the edge began running it")


class ConfigRefused(_Strict):
    """The newest configuration central offered that the edge refused, keeping the one it runs."""

    version: int | None = Field(None, ge=1)
    hash: str | None = Field(None, pattern=r"^[0-9a-f]{12}$")
    problems: list[Annotated[str, Field(max_length=1000)]] = Field(max_length=50)
    at: UtcTime


class ConfigReport(_Strict):
    applied: ConfigApplied
    refused: ConfigRefused | None = None


def _unset(value: object) -> bool:
    return value is None


class EdgeHeartbeat(_Strict):
    interval_s: float
    outbox_messages: int = Field(ge=0)
    outbox_bytes: int = Field(ge=0)
    dropped: dict[str, int] = Field(default_factory=dict)
    cameras: dict[str, CameraFigures] = Field(default_factory=dict)
    # Set while the broker refuses what the edge publishes (MQTT 5 PUBACK >= 0x80), with the fix.
    publish_refused: str | None = Field(None, max_length=500)
    dead_letters: int = Field(0, ge=0, description="outbox messages refused too often, kept for an operator")
    awaiting_receipt: int = Field(0, ge=0, description="sent messages central has not receipted yet")
    resends: int = Field(0, ge=0, description="times the edge resent for want of a receipt (since start)")
    disk_full: bool = False
    actuators: dict[str, ActuatorFigures] = Field(default_factory=dict)
    # Sent only to a central that numbers configurations, and left off the wire when unset: an older
    # central's contract forbids unknown fields, so a key it does not know would dead-letter the status.
    config: ConfigReport | None = Field(None, exclude_if=_unset,
                                        description="the configuration applied, or refused (desired vs reported state)")


EdgeStatus.model_rebuild()


class TaskNotification(_Message):
    """Sent to a grid worker's device when a task is assigned to them."""

    schema_: Literal["sharpeyes.task/1"] = Field(TASK_SCHEMA, alias="schema")
    task_id: str
    incident_id: int
    site: Id
    worker: Id
    hazard: HazardKind
    camera: Id
    zone: Id | None = None
    grid_cell: str | None = None
    title: str
    created_at: UtcTime
    snapshot_sha256: Sha256 | None = None
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Command(_Message):
    schema_: Literal["sharpeyes.command/1"] = Field(COMMAND_SCHEMA, alias="schema")
    command_id: UUID
    name: Id
    args: dict[str, Any] = Field(default_factory=dict)
    sent_at: UtcTime
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CommandReply(_Message):
    schema_: Literal["sharpeyes.reply/1"] = Field(REPLY_SCHEMA, alias="schema")
    command_id: UUID
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    replied_at: UtcTime
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ContractError(ValueError):
    """A message that does not follow the contract; ``reason`` goes to the dead-letter store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse(raw: bytes | str, model: type[M], schema_id: str) -> M:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("payload is not a JSON object")
    schema = data.get("schema")
    if schema != schema_id:
        raise ContractError(f"unknown schema {schema!r}; this central speaks {schema_id!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(_describe(exc)) from None


def parse_event(raw: bytes | str) -> HazardEvent:
    """Parse and validate a hazard event, raising ContractError with a readable reason."""
    return _parse(raw, HazardEvent, EVENT_SCHEMA)


def parse_actuation(raw: bytes | str) -> Actuation:
    """Parse and validate an actuation record, raising ContractError with a readable reason."""
    return _parse(raw, Actuation, ACTUATION_SCHEMA)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class ActuationAction(StrEnum):
    HOLD = "hold"  # the output was set for a hazard that started
    REARM = "rearm"  # renewed inside the device's own timing while the hazard lasts
    RELEASE = "release"  # let go (reason says why)


class ReleaseReason(StrEnum):
    HAZARD_ENDED = "hazard_ended"
    MAX_HOLD = "max_hold"  # held for max_hold_s: released, and central escalates the incident to a person
    MANUAL = "manual"  # a person released it (console, or central's release command)
    CAMERA_LOST = "camera_lost"
    ERROR = "error"  # the device refused or could not be reached; retried with backoff while the hazard lasts
    SHUTDOWN = "shutdown"


class Actuation(_Message):
    """One thing the edge did to an actuator for one zone's hazard (``.../actuation``, QoS 1, kept
    in the edge's outbox until central's receipt, like hazard events). ``ok`` false: the device did
    not acknowledge (``error`` says why). ``latency_ms``: from the arrival of the frame that
    started the hazard to the device's acknowledgement (holds only)."""

    wire_omits_none: ClassVar[bool] = True

    schema_: Literal["sharpeyes.actuation/1"] = Field(ACTUATION_SCHEMA, alias="schema")
    event_id: UUID
    site: Id
    edge: Id
    camera: Id
    zone: Id
    actuator: Id
    kind: ActuatorKind
    action: ActuationAction
    reason: ReleaseReason | None = None
    ok: bool
    error: str | None = Field(None, max_length=500)
    incident_key: str | None = Field(None, min_length=1, max_length=200)
    at: UtcTime
    held_since: UtcTime | None = None
    latency_ms: float | None = Field(None, ge=0)
    by: str | None = Field(None, max_length=100, description="who released it by hand")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _reason_with_release(self) -> Actuation:
        if (self.action == ActuationAction.RELEASE) != (self.reason is not None):
            raise ValueError("reason is given with a release and only then")
        return self


class Receipt(_Message):
    """Central to an edge, on ``cmd/receipt``, after a commit: central has these events and evidence
    blobs (stored, already stored, or kept as dead letters with the reason); the edge may forget them.
    One receipt per edge per commit; a lost receipt only makes the edge send again (central dedups)."""

    schema_: Literal["sharpeyes.receipt/1"] = Field(RECEIPT_SCHEMA, alias="schema")
    site: Id
    edge: Id
    at: UtcTime
    event_ids: list[UUID] = Field(default_factory=list, max_length=10_000)
    evidence: list[Sha256] = Field(default_factory=list, max_length=10_000)


class CentralHello(_Message):
    """Central to each edge, retained on ``cmd/hello``: what central offers. An edge holds events
    for receipts only while ``receipts_until`` lies ahead; central renews it while it runs, so an
    older central (which sends no hello) or one taken away lets the edge fall back to the broker's
    PUBACK once the promise runs out, instead of its outbox growing without bound."""

    schema_: Literal["sharpeyes.hello/1"] = Field(HELLO_SCHEMA, alias="schema")
    site: Id
    edge: Id
    at: UtcTime
    capabilities: list[str] = Field(default_factory=list)
    receipts_until: UtcTime | None = None


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every payload, keyed by schema id, for other implementations."""
    models: dict[str, type[BaseModel]] = {
        EVENT_SCHEMA: HazardEvent,
        HEALTH_SCHEMA: CameraHealth,
        STATUS_SCHEMA: EdgeStatus,
        TASK_SCHEMA: TaskNotification,
        COMMAND_SCHEMA: Command,
        REPLY_SCHEMA: CommandReply,
        RECEIPT_SCHEMA: Receipt,
        HELLO_SCHEMA: CentralHello,
        ACTUATION_SCHEMA: Actuation,
    }
    return {name: model.model_json_schema(by_alias=True) for name, model in models.items()}
