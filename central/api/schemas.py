"""Pydantic response models of the v1 REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    username: str
    role: str
    worker: str | None


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_key: str
    hazard: str
    title: str
    site: str
    edge: str
    camera: str
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


class IncidentList(BaseModel):
    total: int
    items: list[IncidentOut]


class EvidenceOut(BaseModel):
    sha256: str
    content_type: str
    size: int
    available: bool
    url: str


class EventOut(BaseModel):
    event_id: str
    phase: str
    seq: int
    score: float
    observed_at: datetime
    received_at: datetime
    objects: list[dict[str, Any]]
    evidence: list[str]


class IncidentDetail(IncidentOut):
    events: list[EventOut]
    evidence: list[EvidenceOut]


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    reason: str
    received_at: datetime
    size: int
    payload_preview: str


class DeadLetterList(BaseModel):
    total: int
    items: list[DeadLetterOut]


class HealthOut(BaseModel):
    status: str
    database: bool
    mqtt_connected: bool | None
