"""What the planner needs to know about the store, read in a few set-wise queries per batch.

One query per kind of thing the batch names (its event ids, incident keys and their aliases, the
open incidents its new episodes could merge into, its evidence, actuations, commands, edges and
cameras), each in chunks of 500 names, instead of a lookup per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from broker.payloads import Actuation, CameraHealth, CommandReply, EdgeStatus, HazardEvent
from central.ingest.model import CommandFacts, FoldedIncident, StoreView
from central.ingest.parse import BlobIn, Message
from central.store.tables import (
    ActuationRow,
    CameraHealthRow,
    CommandRow,
    EdgeStatusRow,
    Event,
    Evidence,
    EvidenceRef,
    Incident,
    IncidentAlias,
    IncidentEvidence,
)
from central.workflow.rules import OPEN_STATES, Silence

CHUNK = 500
_T = TypeVar("_T")

# The columns a FoldedIncident carries, in its field order.
_FOLDED_COLUMNS = (Incident.incident_key, Incident.site, Incident.edge, Incident.camera, Incident.hazard, Incident.zone,
                   Incident.state, Incident.condition, Incident.started_at, Incident.last_observed_at,
                   Incident.ended_at, Incident.max_score, Incident.event_count, Incident.latest_snapshot_sha256,
                   Incident.episode_count, Incident.id, Incident.latest_snapshot_observed_at)


def chunks(values: Iterable[_T]) -> Iterator[list[_T]]:
    ordered = sorted(set(values))  # type: ignore[type-var]
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


class _ViewReader:
    def __init__(self, session: Session, view: StoreView) -> None:
        self.session, self.view = session, view
        self._by_id: dict[int, FoldedIncident] = {}

    def incidents(self, where: ColumnElement[bool], order_newest_first: bool = False) -> list[FoldedIncident]:
        query = select(*_FOLDED_COLUMNS).where(where)
        if order_newest_first:
            query = query.order_by(Incident.id.desc())
        found = []
        for row in self.session.execute(query):
            incident = self._by_id.get(row.id)
            if incident is None:
                incident = self._by_id[row.id] = FoldedIncident(**row._asdict())
                incident.read_counts = (row.event_count, row.episode_count)
            found.append(incident)
        return found

    def by_keys(self, keys: set[str]) -> None:
        view = self.view
        for part in chunks(keys):
            for incident in self.incidents(Incident.incident_key.in_(part)):
                view.incidents[incident.incident_key] = incident
            aliases: dict[str, int] = {key: incident_id for key, incident_id in self.session.execute(
                select(IncidentAlias.incident_key, IncidentAlias.incident_id).where(IncidentAlias.incident_key.in_(part)))}
            missing = {i for i in aliases.values() if i not in self._by_id}
            for ids in chunks(missing):
                self.incidents(Incident.id.in_(ids))
            for key, incident_id in aliases.items():
                if incident_id in self._by_id:
                    view.incidents[key] = self._by_id[incident_id]
                    view.aliased.add(key)

    def merge_candidates(self, fresh: list[HazardEvent], window_s: float) -> None:
        """The open incidents a new episode of this batch could merge into, newest first per place."""
        open_at = self.view.open_at = {}
        if not fresh:
            return
        oldest = min(e.started_at for e in fresh) - timedelta(seconds=window_s)
        # Narrowed to the batch's zones as well: a camera's other open incidents cannot be merge
        # targets, and loading them all made every batch slower as open incidents piled up.
        zones = sorted({e.zone for e in fresh if e.zone is not None})
        in_zones: ColumnElement[bool] = Incident.zone.in_(zones)
        if any(e.zone is None for e in fresh):
            in_zones = or_(in_zones, Incident.zone.is_(None))
        for cameras in chunks(e.camera for e in fresh):
            for incident in self.incidents(Incident.camera.in_(cameras) & in_zones & Incident.state.in_(OPEN_STATES)
                                           & (Incident.last_observed_at >= oldest), order_newest_first=True):
                open_at.setdefault(incident.place, []).append(incident)

    def evidence(self, shas: set[str]) -> None:
        view, session = self.view, self.session
        for part in chunks(shas):
            view.blobs.update((sha, content_type) for sha, content_type in session.execute(
                select(Evidence.sha256, Evidence.content_type).where(Evidence.sha256.in_(part))))
            for sha, incident_id, content_type in session.execute(
                    select(EvidenceRef.sha256, EvidenceRef.incident_id, EvidenceRef.content_type)
                    .where(EvidenceRef.sha256.in_(part)).order_by(EvidenceRef.id)):
                view.declared[sha] = content_type  # the latest declaration wins
                naming = view.ref_incidents.setdefault(sha, [])
                if incident_id not in naming:
                    naming.append(incident_id)
            view.linked.update((incident_id, sha) for incident_id, sha in session.execute(
                select(IncidentEvidence.incident_id, IncidentEvidence.sha256).where(IncidentEvidence.sha256.in_(part))))


def read_view(session: Session, messages: Sequence[Message], merge_window_s: float,
              silences: Sequence[Silence]) -> StoreView:
    view = StoreView(silences=silences)
    reader = _ViewReader(session, view)
    bodies = [m.body for m in messages if m.refusal is None and m.body is not None]
    events = [b for b in bodies if isinstance(b, HazardEvent)]
    records = [b for b in bodies if isinstance(b, Actuation)]
    event_ids = [m.event_id for m in messages if m.refusal is None and isinstance(m.body, HazardEvent)]
    for part in chunks(event_ids):
        view.known_events.update(session.scalars(select(Event.event_id).where(Event.event_id.in_(part))))
    keys = {e.incident_key for e in events} | {r.incident_key for r in records if r.incident_key is not None}
    reader.by_keys(keys)
    if merge_window_s > 0:
        reader.merge_candidates([e for e in events if e.incident_key not in view.incidents], merge_window_s)
    shas = {b.sha256 for b in bodies if isinstance(b, BlobIn)} | {r.sha256 for e in events for r in e.evidence}
    shas |= {s for b in bodies if isinstance(b, CommandReply)
             for s in [b.result.get("snapshot_sha256")] if isinstance(s, str)}
    reader.evidence(shas)
    _read_small(session, view, bodies, records)
    return view


def _read_small(session: Session, view: StoreView, bodies: list[Any], records: list[Actuation]) -> None:
    """Actuations, commands, edge statuses and camera health: rare messages, small queries."""
    for part in chunks(str(r.event_id) for r in records):
        view.actuations.update(session.scalars(select(ActuationRow.event_id).where(ActuationRow.event_id.in_(part))))
    command_ids = {str(b.command_id) for b in bodies if isinstance(b, CommandReply)}
    for part in chunks(command_ids):
        for row in session.execute(select(CommandRow.command_id, CommandRow.site, CommandRow.edge, CommandRow.name,
                                          CommandRow.status, CommandRow.incident_id)
                                   .where(CommandRow.command_id.in_(part))):
            view.commands[row.command_id] = CommandFacts(*row)
    edges = {(b.site, b.edge) for b in bodies if isinstance(b, EdgeStatus)}
    for site, edge in edges:
        at = session.scalar(select(EdgeStatusRow.at).where(EdgeStatusRow.site == site, EdgeStatusRow.edge == edge))
        if at is not None:
            view.statuses[(site, edge)] = at
    cameras = {(b.site, b.edge, b.camera) for b in bodies if isinstance(b, CameraHealth)}
    for site, edge, camera in cameras:
        since = session.scalar(select(CameraHealthRow.since).where(
            CameraHealthRow.site == site, CameraHealthRow.edge == edge, CameraHealthRow.camera == camera))
        if since is not None:
            view.healths[(site, edge, camera)] = since
