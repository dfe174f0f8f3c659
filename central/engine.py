"""Apply workflow steps to incidents with their side effects, in the caller's transaction.

One place for: the state machine check (``central.workflow``), stage deadlines, assignment by
dispatch rule, feedback, recheck commands, merge, tasks for workers' phones, webhook outbox
rows and the audit record. The caller commits; tasks and webhooks are sent after the commit
by their own senders (outbox), so a crash never announces what was not stored.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from central import audit
from central.clock import Clock
from central.grid import GridTree
from central.labels import incident_title
from central.tables import (
    CommandRow,
    Evidence,
    Feedback,
    Incident,
    IncidentEvidence,
    Suppression,
    Task,
    WebhookDelivery,
)
from central.vocabulary import CloseReason
from central.workflow import (
    CLOSED,
    OPEN_STATES,
    RECEIVED,
    REGISTERED,
    STAGE_OF_STATE,
    SYSTEM,
    TRIAGE,
    Actor,
    check_action,
    silenced_by,
)
from central.workflow_config import WorkflowConfig

log = logging.getLogger(__name__)

CLOSE_REASONS = tuple(CloseReason)


class ActionError(ValueError):
    """422: the request is well-formed but names something that cannot be used (no such photo...)."""


@dataclass
class ActionInput:
    reason: str | None = None
    note: str | None = None
    photos: list[str] = field(default_factory=list)
    worker: str | None = None
    unit: str | None = None
    mode: str = "person"
    target_id: int | None = None
    close_reason: str | None = None


def edge_actor(edge: str | None) -> Actor:
    return Actor(f"edge:{edge or '?'}", "system", system=True)


class WorkflowEngine:
    def __init__(self, config: WorkflowConfig, grid: GridTree, clock: Clock | None = None) -> None:
        self.config = config
        self.grid = grid
        self.clock = clock or Clock()

    # -- the one way state changes ----------------------------------------------------------------

    def act(self, session: Session, incident: Incident, action: str, actor: Actor,
            data: ActionInput | None = None, now: datetime | None = None) -> Incident:
        data = data or ActionInput()
        now = now or self.clock.now()
        t = check_action(action, actor, incident, data.reason)
        before = incident.state
        payload: dict[str, Any] = {}
        handler = getattr(self, f"_on_{action}", None)
        if handler is not None:
            payload = handler(session, incident, actor, data, now) or {}
        if t.target is not None:
            self._enter(incident, t.target, now)
        audit.append(session, incident.id, now, actor.username, action, before, incident.state,
                     data.reason or data.note, payload)
        if action in ("register", "confirm"):
            self._auto_dispatch(session, incident, now)
        return incident

    def _enter(self, incident: Incident, state: str, now: datetime) -> None:
        incident.state = state
        stage = STAGE_OF_STATE.get(state)
        if stage is None:
            incident.stage = incident.stage_started_at = incident.stage_deadline_at = None
            incident.deadline_color = None
        elif stage != incident.stage or incident.stage_deadline_at is None:
            seconds = self.config.rule(incident.hazard).deadlines.for_stage(stage)
            incident.stage, incident.stage_started_at = stage, now
            incident.stage_deadline_at = now + timedelta(seconds=seconds)
            incident.deadline_color = "green"
        if state == CLOSED:
            incident.closed_at = now

    # -- ingest: a new incident and repeated episodes ------------------------------------------

    def on_created(self, session: Session, incident: Incident, actor: Actor, score: float | None = None) -> None:
        """Decide what a freshly received incident becomes: suppressed, registered or triaged.

        ``score``: the score it was received with, when its row already holds later observations
        (the ingest folds a whole batch before the workflow runs)."""
        now = self.clock.now()
        audit.start_chain(session, incident.id)
        audit.append(session, incident.id, now, actor.username, "receive", None, RECEIVED, None,
                     {"incident_key": incident.incident_key, "camera": incident.camera, "zone": incident.zone,
                      "source": incident.source})
        silence = self.active_suppression(session, incident, now)
        if silence is not None:
            incident.close_reason = "suppressed"
            self.act(session, incident, "suppress", SYSTEM, ActionInput(reason=f"silenced: {silence.reason}"), now)
            return
        self.maybe_register(session, incident, now, score)

    def maybe_register(self, session: Session, incident: Incident, now: datetime | None = None,
                       score: float | None = None) -> None:
        """Triage a received incident, or register it when its score (``score``, else its row's best)
        reaches the hazard's auto-register score."""
        now = now or self.clock.now()
        if incident.state not in (RECEIVED, TRIAGE):
            return
        score = (incident.max_score or 0.0) if score is None else score
        threshold = self.config.rule(incident.hazard).auto_register_score
        auto = threshold is not None and incident.source == "camera" and score >= threshold
        if incident.state == RECEIVED and not auto:
            self.act(session, incident, "triage", SYSTEM, now=now)
        elif auto:
            assert threshold is not None
            if incident.state == TRIAGE:
                # A later, surer observation is as good as a monitor's confirmation.
                before = incident.state
                self._enter(incident, REGISTERED, now)
                incident.registered_at = now
                audit.append(session, incident.id, now, "system", "register", before, REGISTERED,
                             f"score {score:.2f} reached {threshold:.2f}", {})
                self._auto_dispatch(session, incident, now)
            else:
                self.act(session, incident, "register", SYSTEM, ActionInput(reason=f"score {score:.2f} ≥ {threshold:.2f}"),
                         now)

    def record_episode(self, session: Session, incident: Incident, incident_key: str, episode_count: int) -> None:
        """Audit a repeated episode merged into ``incident`` (``lifecycle.apply_episode`` counted it)."""
        audit.append(session, incident.id, self.clock.now(), "system", "episode", incident.state, incident.state,
                     f"repeated episode {incident_key} merged", {"incident_key": incident_key,
                                                                 "episode_count": episode_count})

    def silences(self, session: Session, now: datetime) -> list[Suppression]:
        """The silences in force; read once per transaction (a batch of new incidents asks many times)."""
        active: list[Suppression] | None = session.info.get("sharpeyes.silences")
        if active is None:
            active = list(session.scalars(select(Suppression).where(Suppression.until > now)))
            session.info["sharpeyes.silences"] = active
        return active

    def active_suppression(self, session: Session, incident: Incident, now: datetime) -> Suppression | None:
        found = silenced_by(self.silences(session, now), incident.site, incident.camera, incident.zone,
                            incident.hazard, now)
        assert found is None or isinstance(found, Suppression)
        return found

    # -- handlers per action (return the audit payload) ---------------------------------------

    def _on_register(self, session, incident, actor, data, now):
        incident.registered_at = now

    def _on_confirm(self, session, incident, actor, data, now):
        incident.registered_at = now

    def _on_dismiss(self, session, incident, actor, data, now):
        incident.close_reason = "false_alarm"
        return {"camera": incident.camera, "zone": incident.zone}

    def _on_dispatch(self, session, incident, actor, data, now):
        worker, unit = data.worker, data.unit
        manual = worker is not None or unit is not None
        if not manual:
            worker, unit = self.route(incident)
        if worker is None and unit is None:
            raise ActionError("no worker or unit is responsible for this grid cell; name one (worker or unit)")
        if unit is not None and self.config.unit(unit) is None:
            raise ActionError(f"unknown unit {unit!r}")
        incident.assigned_unit = unit
        if worker is not None:
            incident.assigned_worker = worker
        if incident.assigned_worker:
            self._task(session, incident, now)
        self.notify(session, "dispatched", incident, now, actor)
        return {"worker": incident.assigned_worker, "unit": unit, "override": manual}

    def _on_return(self, session, incident, actor, data, now):
        self.notify(session, "returned", incident, now, actor, data.reason)
        return {"worker": incident.assigned_worker, "unit": incident.assigned_unit}

    def _on_feedback(self, session, incident, actor, data, now):
        if not (data.note and data.note.strip()):
            raise ActionError("feedback needs a note")
        for sha in data.photos:
            photo = session.get(Evidence, sha)
            if photo is None:
                raise ActionError(f"photo {sha} was not uploaded (POST /api/v1/uploads first)")
            if photo.uploaded_by != actor.username:
                # Else a worker could attach another grid's evidence by its sha256 and then read it.
                raise ActionError(f"photo {sha} is not one you uploaded; attach only your own photos")
        session.add(Feedback(incident_id=incident.id, actor=actor.username, at=now, note=data.note,
                             photos=list(data.photos)))
        for sha in data.photos:
            self.link(session, incident.id, sha, "photo")
        incident.feedback_by = actor.username
        return {"photos": list(data.photos)}

    def _on_check(self, session, incident, actor, data, now):
        if data.mode not in ("person", "auto"):
            raise ActionError("mode is person or auto")
        if data.mode == "auto":
            if incident.camera is None or incident.edge is None or incident.zone is None:
                raise ActionError("automatic checking needs a camera zone; check it in person")
            cmd = CommandRow(command_id=str(uuid.uuid4()), site=incident.site, edge=incident.edge, name="recheck",
                             args={"camera": incident.camera, "zone": incident.zone}, incident_id=incident.id,
                             actor=actor.username, sent_at=now, status="pending", published=False)
            session.add(cmd)
            return {"mode": "auto", "command_id": cmd.command_id}
        self.notify(session, "checking", incident, now, actor)
        return {"mode": "person"}

    def _on_pass(self, session, incident, actor, data, now):
        incident.close_reason = "fixed"

    def _on_fail(self, session, incident, actor, data, now):
        incident.rework_count = (incident.rework_count or 0) + 1
        incident.feedback_by = None
        if incident.assigned_worker:
            self._task(session, incident, now)
        self.notify(session, "rework", incident, now, actor, data.reason)
        return {"rework_count": incident.rework_count}

    def _on_close(self, session, incident, actor, data, now):
        reason = data.close_reason or "forced"
        if reason not in ("forced", "transferred", "duplicate", "fixed"):
            raise ActionError("close_reason is forced, transferred, duplicate or fixed")
        incident.close_reason = reason
        return {"close_reason": reason}

    def _on_merge(self, session, incident, actor, data, now):
        if data.target_id is None or data.target_id == incident.id:
            raise ActionError("merge needs target_id, another open incident")
        target = session.get(Incident, data.target_id)
        if target is None or target.state not in OPEN_STATES:
            raise ActionError(f"incident {data.target_id} is not an open incident")
        if not actor.system and not actor.in_scope(target.grid_cell):
            raise ActionError(f"incident {data.target_id} is outside your grid")
        target.episode_count = (target.episode_count or 1) + (incident.episode_count or 1)
        target.event_count = (target.event_count or 0) + (incident.event_count or 0)
        incident.merged_into, incident.close_reason = target.id, "duplicate"
        audit.append(session, target.id, now, actor.username, "absorb", target.state, target.state,
                     data.reason, {"merged": incident.id})
        return {"target_id": target.id}

    def _on_supervise(self, session, incident, actor, data, now):
        incident.supervised = True
        return self._raise_level(session, incident, now, actor, data.reason)

    def _on_escalate(self, session, incident, actor, data, now):
        incident.supervised = True
        return self._raise_level(session, incident, now, actor, data.reason)

    # -- helpers ----------------------------------------------------------------------------------

    def _raise_level(self, session, incident, now, actor, reason):
        incident.escalation_level = (incident.escalation_level or 0) + 1
        ancestors = self.grid.ancestors(incident.grid_cell)
        target = ancestors[min(incident.escalation_level, len(ancestors)) - 1] if ancestors else None
        incident.escalated_to = target.code if target else None
        if target is not None and target.workers:
            # The chief of the next level gets the task on their phone too.
            session.add(Task(incident_id=incident.id, worker=target.workers[0], created_at=now))
        self.notify(session, "escalated", incident, now, actor, reason)
        return {"level": incident.escalation_level, "to": incident.escalated_to}

    def _auto_dispatch(self, session: Session, incident: Incident, now: datetime) -> None:
        if not self.config.auto_dispatch:
            return
        worker, unit = self.route(incident)
        if worker is None and unit is None:
            return  # waits in `registered` for a dispatcher; the dispatch deadline runs
        self.act(session, incident, "dispatch", SYSTEM, ActionInput(reason="dispatch rule"), now)

    def route(self, incident: Incident) -> tuple[str | None, str | None]:
        """Dispatch rule: hazard → unit kind covering the cell (grid worker supervises), else the cell's worker."""
        worker = incident.assigned_worker or self._nearest_worker(incident.grid_cell)
        kind = self.config.rule(incident.hazard).unit_kind
        if kind and incident.grid_cell:
            chain = [incident.grid_cell] + [n.code for n in self.grid.ancestors(incident.grid_cell)]
            for code in chain:
                for unit in self.config.units:
                    if unit.kind == kind and code in unit.grid:
                        return worker, unit.id
        return worker, None

    def _nearest_worker(self, code: str | None) -> str | None:
        if code is None or code not in self.grid.nodes:
            return None
        for node in [self.grid.nodes[code]] + self.grid.ancestors(code):
            if node.workers:
                return node.workers[0]
        return None

    def _task(self, session: Session, incident: Incident, now: datetime) -> None:
        session.add(Task(incident_id=incident.id, worker=incident.assigned_worker, created_at=now))

    def link(self, session: Session, incident_id: int, sha: str, kind: str) -> None:
        if session.get(IncidentEvidence, (incident_id, sha)) is None:
            session.add(IncidentEvidence(incident_id=incident_id, sha256=sha, kind=kind))

    def notify(self, session: Session, event: str, incident: Incident, now: datetime, actor: Actor,
               reason: str | None = None) -> None:
        """Queue one webhook delivery per hook that wants this event (sent after commit)."""
        hooks = [h for h in self.config.webhooks if event in h.events]
        if not hooks:
            return
        from central.webhooks import render

        facts = {
            "event": event, "incident_id": incident.id, "title": incident_title(incident.hazard, incident.camera or "-",
                                                                                 incident.zone),
            "hazard": incident.hazard, "state": incident.state, "grid_cell": incident.grid_cell,
            "worker": incident.assigned_worker, "unit": incident.assigned_unit, "actor": actor.username,
            "reason": reason, "at": now.isoformat(), "escalation_level": incident.escalation_level,
            "deadline": incident.stage_deadline_at.isoformat() if incident.stage_deadline_at else None,
        }
        for hook in hooks:
            session.add(WebhookDelivery(hook=hook.name, event=event, incident_id=incident.id,
                                        body=json.dumps(render(hook.format, facts), ensure_ascii=False),
                                        status="pending", attempts=0, next_attempt_at=now, created_at=now))
