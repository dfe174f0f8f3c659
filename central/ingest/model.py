"""The ingest's data: what the store held (``StoreView``), what a batch changes (``ChangeSet``), the
workflow steps it plans and what happened to each message (``Outcome``). Plain data, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.payloads import Actuation, CommandReply
from central.ingest.parse import Message
from central.workflow.rules import Silence

Place = tuple[str, str | None, str, str | None]  # site, camera, hazard, zone


@dataclass
class Outcome:
    """What happened to one message.

    kind: event, duplicate, actuation, evidence, evidence_duplicate, status, health, reply, ignored, dead_letter.
    """

    kind: str
    reason: str | None = None
    incident_id: int | None = None
    created_incident: bool = False
    new_task_ids: list[int] = field(default_factory=list)
    # A command reply (recheck) or a capped hold moved an incident.
    moved_incident: bool = False
    # The event's own time (events and duplicates): the benchmark measures latency from it.
    observed_at: datetime | None = None

    @property
    def incidents_changed(self) -> bool:
        return self.kind in ("event", "evidence", "actuation") or self.moved_incident


@dataclass(slots=True, eq=False)
class FoldedIncident:
    """The columns of an incident that events change (``lifecycle.apply_event`` folds into it), and
    those that decide merging and ownership. ``id`` is None for an incident the batch creates
    until the applier inserts it."""

    incident_key: str
    site: str
    edge: str | None
    camera: str | None
    hazard: str
    zone: str | None
    state: str
    condition: str | None
    started_at: datetime
    last_observed_at: datetime
    ended_at: datetime | None
    max_score: float | None
    event_count: int
    latest_snapshot_sha256: str | None
    episode_count: int
    id: int | None = None
    grid_cell: str | None = None
    assigned_worker: str | None = None
    created: bool = False
    changed: bool = False
    # (event_count, episode_count) as read from the store: the fold's version. The applier writes
    # the fold back only where the row still has them, so two workers folding events of one
    # incident at once cannot overwrite each other's (the later one re-reads and folds again).
    read_counts: tuple[int, int] | None = None
    latest_snapshot_observed_at: datetime | None = None

    @property
    def place(self) -> Place:
        return (self.site, self.camera, self.hazard, self.zone)


# Fold columns the applier writes back for an incident the store held.
FOLDED = ("zone", "condition", "started_at", "last_observed_at", "ended_at", "max_score", "event_count",
          "latest_snapshot_sha256", "latest_snapshot_observed_at", "episode_count")


@dataclass(slots=True)
class CommandFacts:
    command_id: str
    site: str
    edge: str
    name: str
    status: str
    incident_id: int | None


@dataclass
class StoreView:
    """What the store held, when the batch began, about the things the batch names."""

    known_events: set[str] = field(default_factory=set)
    # By incident key, the keys of merged episodes (aliases) included.
    incidents: dict[str, FoldedIncident] = field(default_factory=dict)
    aliased: set[str] = field(default_factory=set)
    # Open incidents new episodes could merge into, newest first; None when merging is off.
    open_at: dict[Place, list[FoldedIncident]] | None = None
    silences: Sequence[Silence] = ()
    blobs: dict[str, str] = field(default_factory=dict)  # sha256 -> stored content type
    declared: dict[str, str] = field(default_factory=dict)  # sha256 -> latest type an event declared
    ref_incidents: dict[str, list[int]] = field(default_factory=dict)  # sha256 -> incidents naming it
    linked: set[tuple[int, str]] = field(default_factory=set)
    actuations: set[str] = field(default_factory=set)
    commands: dict[str, CommandFacts] = field(default_factory=dict)
    statuses: dict[tuple[str, str], datetime] = field(default_factory=dict)
    healths: dict[tuple[str, str, str], datetime] = field(default_factory=dict)


# -- workflow steps (run by the applier, in this order, through the workflow engine) --------------

@dataclass(slots=True)
class Created:
    incident: FoldedIncident
    score: float  # the incident's score after its first event: what one-by-one handling saw
    outcome: Outcome


@dataclass(slots=True)
class MaybeRegister:
    incident: FoldedIncident
    score: float
    outcome: Outcome


@dataclass(slots=True)
class Episode:
    incident: FoldedIncident
    incident_key: str
    episode_count: int


@dataclass(slots=True)
class Escalate:
    record: Actuation
    incident: FoldedIncident
    outcome: Outcome


@dataclass(slots=True)
class Recheck:
    command: CommandFacts
    reply: CommandReply
    edge: str
    snapshot: str | None  # a stored blob the reply names
    outcome: Outcome


Step = Created | MaybeRegister | Episode | Escalate | Recheck
IncidentRef = FoldedIncident | int


@dataclass
class ChangeSet:
    outcomes: list[Outcome] = field(default_factory=list)
    dead_letters: list[Message] = field(default_factory=list)
    new_incidents: list[FoldedIncident] = field(default_factory=list)
    changed_incidents: list[FoldedIncident] = field(default_factory=list)
    aliases: list[tuple[str, FoldedIncident]] = field(default_factory=list)
    # Event rows without incident_id, and the incident each belongs to.
    events: list[tuple[dict[str, Any], FoldedIncident]] = field(default_factory=list)
    # (event_id, incident, sha256, content_type, size) for each evidence ref an event declares.
    refs: list[tuple[str, FoldedIncident, str, str, int]] = field(default_factory=list)
    blobs: list[dict[str, Any]] = field(default_factory=list)
    blob_types: dict[str, str] = field(default_factory=dict)  # stored blobs whose declared type differs
    links: list[tuple[IncidentRef, str]] = field(default_factory=list)
    actuations: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    healths: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # (site, edge) -> the configuration version the edge reports applied or refused (edge_config_reports)
    config_reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # command_id -> new values
    steps: list[Step] = field(default_factory=list)
    # Outcomes whose incident_id is known once the applier has numbered new incidents.
    incident_of: list[tuple[Outcome, IncidentRef]] = field(default_factory=list)
