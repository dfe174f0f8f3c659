"""The ingest's decisions, pure: given a batch's parsed messages and what the store held when the
batch began (``StoreView``), the change set that stores them (``ChangeSet``).

It deduplicates events and actuations against the store and the batch, folds phases into
incidents (``lifecycle``), merges repeated episodes, links evidence to incidents, and lists the
workflow steps (a new incident to receive, a surer observation that may register it, an episode to
record, a capped hold to escalate, a recheck answered) in the order one-by-one handling would take
them. Nothing here touches a database, so one message or ten thousand take the same path and the
rules are tested on plain data; ``central.ingest.apply`` writes the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker.payloads import Actuation, CameraHealth, CommandReply, EdgeStatus, HazardEvent, ReleaseReason
from central.fleet.drift import report_values
from central.fleet.edge_health import edge_problems
from central.ingest import lifecycle
from central.ingest.model import (
    ChangeSet,
    Created,
    Episode,
    Escalate,
    FoldedIncident,
    IncidentRef,
    MaybeRegister,
    Outcome,
    Recheck,
    StoreView,
)
from central.ingest.parse import BlobIn, Message
from central.workflow.routing import Route
from central.workflow.rules import silenced_by
from central.workflow.vocabulary import State


@dataclass(frozen=True)
class Rules:
    route: Callable[[str, str], Route]
    merge_window_s: float
    now: datetime


class Planner:
    def __init__(self, view: StoreView, rules: Rules) -> None:
        self.view, self.rules = view, rules
        self.changes = ChangeSet()
        self._owners_checked: set[tuple[Any, ...]] = set()
        self._blobs_in: dict[str, tuple[BlobIn, datetime]] = {}  # new blobs of the batch
        self._blob_outcomes: list[tuple[str, Outcome]] = []

    def plan(self, messages: list[Message]) -> ChangeSet:
        for message in messages:
            outcome = self._refused(message) if message.refusal is not None else self._message(message)
            self.changes.outcomes.append(outcome)
        self._settle_evidence()
        changed = {id(i): i for i in self.view.incidents.values() if i.changed and not i.created}
        self.changes.changed_incidents = list(changed.values())
        return self.changes

    def _refused(self, message: Message) -> Outcome:
        self.changes.dead_letters.append(message)
        return Outcome("dead_letter", reason=message.refusal)

    def _message(self, message: Message) -> Outcome:
        body = message.body
        if isinstance(body, HazardEvent):
            return self._event(message, body)
        if isinstance(body, BlobIn):
            return self._blob(message, body)
        if isinstance(body, Actuation):
            return self._actuation(message, body)
        if isinstance(body, EdgeStatus):
            return self._status(message, body)
        if isinstance(body, CameraHealth):
            return self._health(message, body)
        if isinstance(body, CommandReply):
            return self._reply(message, body)
        return Outcome("ignored", reason=f"retained {message.kind} cleared")

    # -- hazard events -----------------------------------------------------------------------------

    def _event(self, message: Message, event: HazardEvent) -> Outcome:
        event_id = message.event_id
        if event_id in self.view.known_events:
            return Outcome("duplicate", reason=f"event {event_id} already stored", observed_at=event.observed_at)
        found = self._incident_for(event)
        if isinstance(found, str):
            message.refusal = found
            return self._refused(message)
        incident, created = found
        self.view.known_events.add(event_id)
        lifecycle.apply_event(incident, event)
        incident.changed = True
        assert isinstance(message.payload, bytes)
        # The bytes the edge sent, as validated (the model forbids unknown fields): stored as they
        # came instead of re-serialised, which cost a sixth of the writer's time.
        self.changes.events.append((dict(event_id=event_id, phase=event.phase.value, seq=event.seq, score=event.score,
                                         observed_at=event.observed_at, received_at=message.received_at,
                                         payload_json=message.payload.decode()), incident))
        for ref in {r.sha256: r for r in event.evidence}.values():
            self.changes.refs.append((event_id, incident, ref.sha256, ref.content_type, ref.bytes))
        outcome = Outcome("event", created_incident=created, observed_at=event.observed_at)
        self.changes.incident_of.append((outcome, incident))
        score = incident.max_score or 0.0
        if created:
            self.changes.steps.append(Created(incident, score, outcome))
        elif incident.created or incident.state == State.TRIAGE:
            # A surer observation may reach the hazard's auto-register score (the workflow decides,
            # and does nothing unless the incident waits in triage).
            self.changes.steps.append(MaybeRegister(incident, score, outcome))
        return outcome

    def _incident_for(self, event: HazardEvent) -> tuple[FoldedIncident, bool] | str:
        """The incident an event folds into and whether it is new, or why the event is refused."""
        known = self.view.incidents.get(event.incident_key) or self._created_meanwhile(event)
        if known is not None:
            refusal = self._owner_refusal(known, event)
            return refusal if refusal is not None else (known, False)
        target = self._open_episode_target(event)
        if target is not None:
            # The edge saw the same hazard again (a parked car re-detected): one case, counted twice.
            lifecycle.apply_episode(target, event.observed_at)
            target.changed = True
            self.changes.aliases.append((event.incident_key, target))
            self.changes.steps.append(Episode(target, event.incident_key, target.episode_count))
            self.view.incidents[event.incident_key] = target
            self.view.aliased.add(event.incident_key)
            return target, False
        incident = self._new_incident(event)
        self.view.incidents[event.incident_key] = incident
        self.changes.new_incidents.append(incident)
        suppressed = silenced_by(self.view.silences, incident.site, incident.camera, incident.zone, incident.hazard,
                                 self.rules.now) is not None
        if self.view.open_at is not None and not suppressed:  # a silenced incident is closed at once
            self.view.open_at.setdefault(incident.place, []).insert(0, incident)
        return incident, True

    def _owner_refusal(self, incident: FoldedIncident, event: HazardEvent) -> str | None:
        owner = (event.incident_key, event.site, event.edge, event.camera, event.hazard)
        if owner in self._owners_checked or event.incident_key in self.view.aliased:
            return None
        theirs = (incident.site, incident.edge, incident.camera, incident.hazard)
        ours = (event.site, event.edge, event.camera, event.hazard.value)
        if theirs != ours:
            return (f"incident_key {event.incident_key!r} already belongs to {'/'.join(map(str, theirs))}, "
                    f"not {'/'.join(ours)}")
        self._owners_checked.add(owner)
        return None

    def _created_meanwhile(self, event: HazardEvent) -> FoldedIncident | None:
        """The event's own incident among the open ones at its place: another worker created it after
        this batch looked the key up and before it read the merge candidates (each query sees what
        was committed when it ran). It is this incident, not an earlier episode to merge into."""
        if self.view.open_at is None:
            return None
        place = (event.site, event.camera, event.hazard.value, event.zone)
        found = next((i for i in self.view.open_at.get(place, []) if i.incident_key == event.incident_key), None)
        if found is not None:
            self.view.incidents[event.incident_key] = found
        return found

    def _open_episode_target(self, event: HazardEvent) -> FoldedIncident | None:
        window = self.rules.merge_window_s
        if window <= 0 or self.view.open_at is None:
            return None
        since = event.started_at - timedelta(seconds=window)
        place = (event.site, event.camera, event.hazard.value, event.zone)
        return next((i for i in self.view.open_at.get(place, []) if i.last_observed_at >= since), None)

    def _new_incident(self, event: HazardEvent) -> FoldedIncident:
        route = self.rules.route(event.site, event.camera)
        return FoldedIncident(incident_key=event.incident_key, site=event.site, edge=event.edge, camera=event.camera,
                             hazard=event.hazard.value, zone=event.zone, state=State.RECEIVED, condition=None,
                             started_at=event.started_at, last_observed_at=event.observed_at, ended_at=None,
                             max_score=None, event_count=0, latest_snapshot_sha256=None, episode_count=1,
                             grid_cell=route.grid_cell, assigned_worker=route.worker, created=True)

    # -- evidence ------------------------------------------------------------------------------------

    def _blob(self, message: Message, blob: BlobIn) -> Outcome:
        outcome = Outcome("evidence")
        if blob.sha256 in self.view.blobs or blob.sha256 in self._blobs_in:
            outcome.kind = "evidence_duplicate"
        else:
            self._blobs_in[blob.sha256] = (blob, message.received_at)
        self._blob_outcomes.append((blob.sha256, outcome))
        return outcome

    def _settle_evidence(self) -> None:
        """Blob rows, declared types and incident links, set-wise for the batch. The end state is the
        one message-by-message handling reaches in any arrival order: every blob has a row (its type
        as an event declared it, else as sniffed), and every incident whose events name a stored
        blob is linked to it."""
        view, changes = self.view, self.changes
        declared = dict(view.declared)
        naming: dict[str, list[IncidentRef]] = {sha: list(ids) for sha, ids in view.ref_incidents.items()}
        for _event_id, incident, sha, content_type, _size in changes.refs:
            declared[sha] = content_type  # the latest declaration wins
            known = naming.setdefault(sha, [])
            if incident not in known and (incident.id is None or incident.id not in known):
                known.append(incident)
        for sha, outcome in self._blob_outcomes:
            if sha in naming:
                changes.incident_of.append((outcome, naming[sha][0]))
        for sha, (blob, received_at) in self._blobs_in.items():
            changes.blobs.append(dict(sha256=sha, content_type=declared.get(sha, blob.sniffed_type), size=blob.size,
                                      received_at=received_at))
        for sha, stored_type in view.blobs.items():
            # The blob came first and its type was guessed; the event's declaration is better.
            if sha in declared and declared[sha] != stored_type:
                changes.blob_types[sha] = declared[sha]
        present = set(view.blobs) | set(self._blobs_in)
        for sha in sorted(present & set(naming)):
            for ref in naming[sha]:
                ref_id = ref if isinstance(ref, int) else ref.id
                if ref_id is None or (ref_id, sha) not in view.linked:
                    changes.links.append((ref, sha))

    # -- actuations, command replies, edge status, camera health ------------------------------------

    def _actuation(self, message: Message, record: Actuation) -> Outcome:
        event_id = str(record.event_id)
        if event_id in self.view.actuations:
            return Outcome("duplicate", reason=f"actuation {event_id} already stored")
        self.view.actuations.add(event_id)
        self.changes.actuations.append(dict(
            event_id=event_id, site=record.site, edge=record.edge, camera=record.camera, zone=record.zone,
            actuator=record.actuator, kind=record.kind, action=record.action.value,
            reason=record.reason.value if record.reason else None, ok=record.ok, error=record.error,
            incident_key=record.incident_key, at=record.at, held_since=record.held_since, latency_ms=record.latency_ms,
            by=record.by, received_at=message.received_at))
        outcome = Outcome("actuation")
        incident = self.view.incidents.get(record.incident_key) if record.incident_key is not None else None
        if incident is not None:
            self.changes.incident_of.append((outcome, incident))
            if record.reason == ReleaseReason.MAX_HOLD:
                self.changes.steps.append(Escalate(record, incident, outcome))
        return outcome

    def _reply(self, message: Message, reply: CommandReply) -> Outcome:
        parts = message.parts
        assert parts is not None and parts.edge is not None
        command = self.view.commands.get(str(reply.command_id))
        if command is None:
            return Outcome("reply", reason="not a command this central sent")
        if (command.site, command.edge, command.name) != (parts.site, parts.edge, parts.command):
            message.refusal = (f"reply to command {command.command_id} ({command.name} for {command.site}/"
                               f"{command.edge}) arrived on {parts.site}/{parts.edge}/cmd/{parts.command}")
            return self._refused(message)
        if command.status != "pending":
            return Outcome("reply", reason="reply already stored")
        command.status = "ok" if reply.ok else "error"
        self.changes.replies.append((command.command_id, dict(status=command.status, result=dict(reply.result),
                                                              errors=list(reply.errors),
                                                              replied_at=message.received_at)))
        outcome = Outcome("reply")
        if command.name == "recheck" and command.incident_id is not None:
            # A recheck reply may name a snapshot received just before it.
            snapshot = reply.result.get("snapshot_sha256")
            stored = isinstance(snapshot, str) and (snapshot in self.view.blobs or snapshot in self._blobs_in)
            self.changes.steps.append(Recheck(command, reply, parts.edge, snapshot if stored else None, outcome))
        return outcome

    def _status(self, message: Message, status: EdgeStatus) -> Outcome:
        key = (status.site, status.edge)
        stored = self.view.statuses.get(key)
        if stored is not None and stored > status.at:
            # A retained message replayed on reconnect must not overwrite newer news.
            return Outcome("ignored", reason="older than the stored status")
        self.view.statuses[key] = status.at
        values = self.changes.statuses.setdefault(key, {})
        values.update(state=status.state, at=status.at, version=status.version, cameras=list(status.cameras),
                      received_at=message.received_at)
        if status.heartbeat is not None or status.state == "offline":
            values["problems"] = edge_problems(status.heartbeat)
        if status.heartbeat is not None and status.heartbeat.config is not None:
            self.changes.config_reports[key] = report_values(status.heartbeat.config, message.received_at)
        return Outcome("status")

    def _health(self, message: Message, health: CameraHealth) -> Outcome:
        key = (health.site, health.edge, health.camera)
        stored = self.view.healths.get(key)
        if stored is not None and stored > health.since:
            return Outcome("ignored", reason="older than the stored health")
        self.view.healths[key] = health.since
        self.changes.healths[key] = dict(state=health.state.value, since=health.since, cause=health.cause,
                                         received_at=message.received_at)
        return Outcome("health")


def plan_batch(messages: list[Message], view: StoreView, rules: Rules) -> ChangeSet:
    return Planner(view, rules).plan(messages)
