"""Apply workflow steps to incidents with their side effects, in the caller's transaction.

One place for: the state machine check (``central.workflow.rules``), stage deadlines, assignment by
dispatch rule, feedback, recheck commands, merge, tasks for workers' phones, webhook outbox
rows and the audit record. What each action does to its incident is in ``handlers.py``, found by
its ``Action``. The caller commits; tasks and webhooks are sent after the commit
by their own senders (outbox), so a crash never announces what was not stored.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.store.clock import Clock
from central.store.tables import Incident, IncidentEvidence, Suppression, Task, WebhookDelivery
from central.workflow import audit
from central.workflow.config import WorkflowConfig
from central.workflow.grid import GridTree
from central.workflow.handlers import HANDLERS, ActionError, ActionInput, Step
from central.workflow.labels import incident_title
from central.workflow.rules import (
    CLOSED,
    RECEIVED,
    REGISTERED,
    STAGE_OF_STATE,
    SYSTEM,
    TRIAGE,
    Actor,
    check_action,
    silenced_by,
)
from central.workflow.vocabulary import Action, CloseReason, IncidentSource

# Callers import the handlers' input and error from the engine, the module they call.
__all__ = ["ActionError", "ActionInput", "WorkflowEngine", "edge_actor"]

log = logging.getLogger(__name__)


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
        """Apply ``action`` (an ``Action``, or its name as the API received it) to ``incident``."""
        data = data or ActionInput()
        now = now or self.clock.now()
        t = check_action(action, actor, incident, data.reason)
        step = Action(action)  # check_action refused names outside the state machine (409)
        before = incident.state
        payload: dict[str, Any] = {}
        handler = HANDLERS.get(step)
        if handler is not None:
            payload = handler(Step(self, session, incident, actor, data, now))
        if t.target is not None:
            self._enter(incident, t.target, now)
        audit.append(session, incident.id, now, actor.username, step, before, incident.state,
                     data.reason or data.note, payload)
        if step in (Action.REGISTER, Action.CONFIRM):
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
            incident.close_reason = CloseReason.SUPPRESSED
            self.act(session, incident, Action.SUPPRESS, SYSTEM, ActionInput(reason=f"silenced: {silence.reason}"), now)
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
        auto = threshold is not None and incident.source == IncidentSource.CAMERA and score >= threshold
        if incident.state == RECEIVED and not auto:
            self.act(session, incident, Action.TRIAGE, SYSTEM, now=now)
        elif auto:
            assert threshold is not None
            if incident.state == TRIAGE:
                # A later, surer observation is as good as a monitor's confirmation.
                before = incident.state
                self._enter(incident, REGISTERED, now)
                incident.registered_at = now
                audit.append(session, incident.id, now, "system", Action.REGISTER, before, REGISTERED,
                             f"score {score:.2f} reached {threshold:.2f}", {})
                self._auto_dispatch(session, incident, now)
            else:
                self.act(session, incident, Action.REGISTER, SYSTEM, ActionInput(reason=f"score {score:.2f} ≥ {threshold:.2f}"),
                         now)

    def record_episode(self, session: Session, incident: Incident, incident_key: str, episode_count: int) -> None:
        """Audit a repeated episode merged into ``incident`` (``lifecycle.apply_episode`` counted it)."""
        audit.append(session, incident.id, self.clock.now(), "system", Action.EPISODE, incident.state, incident.state,
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

    # -- services the handlers use (handlers.StepHost) ----------------------------------------------

    def _auto_dispatch(self, session: Session, incident: Incident, now: datetime) -> None:
        if not self.config.auto_dispatch:
            return
        worker, unit = self.route(incident)
        if worker is None and unit is None:
            return  # waits in `registered` for a dispatcher; the dispatch deadline runs
        self.act(session, incident, Action.DISPATCH, SYSTEM, ActionInput(reason="dispatch rule"), now)

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

    def add_task(self, session: Session, incident: Incident, now: datetime) -> None:
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
        from central.workflow.webhooks import render

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
