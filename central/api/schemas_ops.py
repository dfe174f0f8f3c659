"""Response models of the operational routes: the grid, units, users, sites and their edges, commands,
supervision, silences, statistics, webhooks, evidence holds and reads. With ``schemas.py`` they
make every JSON route's answer part of the OpenAPI document the console's client is checked
against (tests/central/test_openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from central.api.schemas import IncidentOut


class GridIndexOut(BaseModel):
    month: str
    score: float
    color: str


class GridNodeOut(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None
    workers: list[str]
    open: int
    overdue: int
    index: GridIndexOut


class GridNodeSaved(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None = None
    workers: list[str] = []


class UnitOut(BaseModel):
    id: str
    name: str
    kind: str
    grid: list[str]


class UserOut(BaseModel):
    username: str
    role: str
    worker: str | None
    unit: str | None
    grid: list[str]
    active: bool
    managed_by: str


class ActuatorStateOut(BaseModel):
    id: str
    kind: str
    name: str | None
    max_hold_s: float
    state: str  # idle, held, failing
    camera: str | None = None
    zone: str | None = None
    since: datetime | None = None
    at: datetime | None = None
    error: str | None = None
    incident_key: str | None = None


class CameraOut(BaseModel):
    id: str
    grid_cell: str | None
    health: str | None
    health_since: datetime | None
    cause: str | None
    zones: list[dict[str, object]]
    latest_snapshot_sha256: str | None


class EdgeOut(BaseModel):
    id: str
    state: str | None
    at: datetime | None
    version: str | None
    problems: list[str]
    cameras: list[CameraOut]
    actuators: list[ActuatorStateOut] = []


class SiteOut(BaseModel):
    site: str
    name: str
    edges: list[EdgeOut]


class CommandOut(BaseModel):
    command_id: str
    name: str
    edge: str
    incident_id: int | None
    sent_at: datetime
    published: bool
    status: str
    result: dict[str, object] | None
    errors: list[str] | None
    replied_at: datetime | None


class CommandQueued(BaseModel):
    command_id: str
    edge: str


class GridLoadOut(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None
    open: int
    yellow: int
    red: int
    supervised: int


class SupervisionOut(BaseModel):
    overdue: list[IncidentOut]
    yellow: list[IncidentOut]
    supervised: list[IncidentOut]
    by_grid: list[GridLoadOut]


class SuppressionOut(BaseModel):
    id: int
    camera: str
    zone: str | None
    hazard: str | None
    until: datetime
    reason: str
    created_by: str
    created_at: datetime


class CameraFalseAlarms(BaseModel):
    camera: str
    incidents: int
    false_alarms: int
    rate: float | None


class ZoneFalseAlarms(CameraFalseAlarms):
    zone: str | None


class DayCount(BaseModel):
    day: str
    incidents: int


class HazardCount(BaseModel):
    hazard: str
    incidents: int


class CellCount(BaseModel):
    grid_cell: str | None
    incidents: int


class FreshnessOut(BaseModel):
    """Where figures were read (``central serve --read-database-url``: central/store/read_replica.py); the
    same in the headers X-Sharpeyes-Read-Source, X-Sharpeyes-Staleness-S and X-Sharpeyes-Read-Fallback."""

    source: Literal["replica", "primary"] = Field(description="the database the figures were read from")
    staleness_s: float = Field(description="how far behind the primary the figures may be, in seconds (0: current)")
    fallback: str | None = Field(description="why the primary was read although a replica is configured "
                                             "(e.g. replica unreachable; replica behind by 42 s > bound 30 s)")


class StatsOut(BaseModel):
    total: int
    counts_by_state: dict[str, int]
    closed: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    mean_stage_s: dict[str, float | None]
    closed_at_community_or_below_share: float | None
    overdue_now: int
    suppressed: int
    false_alarm_rate_by_camera: list[CameraFalseAlarms]
    false_alarms_by_zone: list[ZoneFalseAlarms]
    by_day: list[DayCount]
    by_hazard: list[HazardCount]
    by_grid_cell: list[CellCount]
    freshness: FreshnessOut | None = Field(None, description="where these figures were read and how stale they may be")


class IndexRowOut(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None
    incidents: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    score: float
    color: str
    month: str


class DeliveryOut(BaseModel):
    id: int
    hook: str
    event: str
    incident_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class VerifyOut(BaseModel):
    records: int
    ok: bool
    breaks: list[str]


class ReadOut(BaseModel):
    at: str
    incident_id: int
    username: str
    role: str | None
    sha256: str | None
    variant: str | None
    reason: str | None
    address: str | None
    seq: int
    hash: str


class LegalHoldOut(BaseModel):
    incident_id: int
    legal_hold: bool


class EvidenceHoldsOut(BaseModel):
    sha256: str
    holders: list[str]


class PiplRowOut(BaseModel):
    """One camera of the PIPL register (central/evidence/pipl.py)."""

    site: str
    edge: str
    camera: str
    grid_cell: str | None
    hazards: str
    purpose: str | None
    legal_basis: str | None
    signage: bool | None
    assessed: str | None
    retention: str
    gaps: str
