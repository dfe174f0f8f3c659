"""What each workflow action does to its incident beyond the state change: one annotated function per
action, found in ``HANDLERS`` by its ``Action``. The state machine (``rules.py``) has already allowed
the step; ``engine.py`` applies the target state and the audit record around the handler. A handler
returns the audit payload and raises ``ActionError`` (422) for input it cannot use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from central.store.tables import CommandRow, Evidence, Feedback, Incident, Task
from central.workflow import audit
from central.workflow.config import WorkflowConfig
from central.workflow.grid import GridTree
from central.workflow.rules import OPEN_STATES, Actor
from central.workflow.vocabulary import Action, CloseReason, CommandStatus

Payload = dict[str, Any]

# What a supervisor may name when closing by hand; ``false_alarm`` and ``suppressed`` are written
# only by their own steps (dismiss, a silence), so the statistics can trust them.
MANUAL_CLOSE_REASONS: tuple[CloseReason, ...] = (
    CloseReason.FORCED, CloseReason.TRANSFERRED, CloseReason.DUPLICATE, CloseReason.FIXED)
# Every outcome the workflow writes: the manual ones, dismiss's and a silence's.
CLOSE_REASONS: frozenset[CloseReason] = frozenset(MANUAL_CLOSE_REASONS) | {CloseReason.FALSE_ALARM,
                                                                          CloseReason.SUPPRESSED}


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


class StepHost(Protocol):
    """The engine's services a handler uses (a protocol, so this module does not import the engine)."""

    @property
    def config(self) -> WorkflowConfig: ...
    @property
    def grid(self) -> GridTree: ...

    def route(self, incident: Incident) -> tuple[str | None, str | None]: ...
    def add_task(self, session: Session, incident: Incident, now: datetime) -> None: ...
    def link(self, session: Session, incident_id: int, sha: str, kind: str) -> None: ...
    def notify(self, session: Session, event: str, incident: Incident, now: datetime, actor: Actor,
               reason: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One action being applied: everything its handler reads."""

    workflow: StepHost
    session: Session
    incident: Incident
    actor: Actor
    data: ActionInput
    now: datetime


Handler = Callable[[Step], Payload]


def _registered(s: Step) -> Payload:
    s.incident.registered_at = s.now
    return {}


def _dismiss(s: Step) -> Payload:
    s.incident.close_reason = CloseReason.FALSE_ALARM
    return {"camera": s.incident.camera, "zone": s.incident.zone}


def _dispatch(s: Step) -> Payload:
    incident, data = s.incident, s.data
    worker, unit = data.worker, data.unit
    manual = worker is not None or unit is not None
    if not manual:
        worker, unit = s.workflow.route(incident)
    if worker is None and unit is None:
        raise ActionError("no worker or unit is responsible for this grid cell; name one (worker or unit)")
    if unit is not None and s.workflow.config.unit(unit) is None:
        raise ActionError(f"unknown unit {unit!r}")
    incident.assigned_unit = unit
    if worker is not None:
        incident.assigned_worker = worker
    if incident.assigned_worker:
        s.workflow.add_task(s.session, incident, s.now)
    s.workflow.notify(s.session, "dispatched", incident, s.now, s.actor)
    return {"worker": incident.assigned_worker, "unit": unit, "override": manual}


def _return(s: Step) -> Payload:
    s.workflow.notify(s.session, "returned", s.incident, s.now, s.actor, s.data.reason)
    return {"worker": s.incident.assigned_worker, "unit": s.incident.assigned_unit}


def _feedback(s: Step) -> Payload:
    data, actor = s.data, s.actor
    if not (data.note and data.note.strip()):
        raise ActionError("feedback needs a note")
    for sha in data.photos:
        photo = s.session.get(Evidence, sha)
        if photo is None:
            raise ActionError(f"photo {sha} was not uploaded (POST /api/v1/uploads first)")
        if photo.uploaded_by != actor.username:
            # Else a worker could attach another grid's evidence by its sha256 and then read it.
            raise ActionError(f"photo {sha} is not one you uploaded; attach only your own photos")
    s.session.add(Feedback(incident_id=s.incident.id, actor=actor.username, at=s.now, note=data.note,
                           photos=list(data.photos)))
    for sha in data.photos:
        s.workflow.link(s.session, s.incident.id, sha, "photo")
    s.incident.feedback_by = actor.username
    return {"photos": list(data.photos)}


def _check(s: Step) -> Payload:
    incident, mode = s.incident, s.data.mode
    if mode not in ("person", "auto"):
        raise ActionError("mode is person or auto")
    if mode == "auto":
        if incident.camera is None or incident.edge is None or incident.zone is None:
            raise ActionError("automatic checking needs a camera zone; check it in person")
        cmd = CommandRow(command_id=str(uuid.uuid4()), site=incident.site, edge=incident.edge, name="recheck",
                         args={"camera": incident.camera, "zone": incident.zone}, incident_id=incident.id,
                         actor=s.actor.username, sent_at=s.now, status=CommandStatus.PENDING, published=False)
        s.session.add(cmd)
        return {"mode": "auto", "command_id": cmd.command_id}
    s.workflow.notify(s.session, "checking", incident, s.now, s.actor)
    return {"mode": "person"}


def _pass(s: Step) -> Payload:
    s.incident.close_reason = CloseReason.FIXED
    return {}


def _fail(s: Step) -> Payload:
    incident = s.incident
    incident.rework_count = (incident.rework_count or 0) + 1
    incident.feedback_by = None
    if incident.assigned_worker:
        s.workflow.add_task(s.session, incident, s.now)
    s.workflow.notify(s.session, "rework", incident, s.now, s.actor, s.data.reason)
    return {"rework_count": incident.rework_count}


def _close(s: Step) -> Payload:
    named = s.data.close_reason or CloseReason.FORCED
    if named not in MANUAL_CLOSE_REASONS:
        raise ActionError(f"close_reason is {', '.join(MANUAL_CLOSE_REASONS[:-1])} or {MANUAL_CLOSE_REASONS[-1]}")
    reason = CloseReason(named)
    s.incident.close_reason = reason
    return {"close_reason": reason}


def _merge(s: Step) -> Payload:
    incident, data, actor = s.incident, s.data, s.actor
    if data.target_id is None or data.target_id == incident.id:
        raise ActionError("merge needs target_id, another open incident")
    target = s.session.get(Incident, data.target_id)
    # A target outside the actor's grid is answered like a missing one: no probing other grids.
    if target is None or target.state not in OPEN_STATES or (not actor.system and not actor.in_scope(target.grid_cell)):
        raise ActionError(f"incident {data.target_id} is not an open incident in your grid")
    target.episode_count = (target.episode_count or 1) + (incident.episode_count or 1)
    target.event_count = (target.event_count or 0) + (incident.event_count or 0)
    incident.merged_into, incident.close_reason = target.id, CloseReason.DUPLICATE
    audit.append(s.session, target.id, s.now, actor.username, "absorb", target.state, target.state,
                 data.reason, {"merged": incident.id})
    return {"target_id": target.id}


def _raise_level(s: Step) -> Payload:
    """督办 by a person and escalation by the scheduler are one thing: supervised, one level up."""
    incident = s.incident
    incident.supervised = True
    incident.escalation_level = (incident.escalation_level or 0) + 1
    ancestors = s.workflow.grid.ancestors(incident.grid_cell)
    target = ancestors[min(incident.escalation_level, len(ancestors)) - 1] if ancestors else None
    incident.escalated_to = target.code if target else None
    if target is not None and target.workers:
        # The chief of the next level gets the task on their phone too.
        s.session.add(Task(incident_id=incident.id, worker=target.workers[0], created_at=s.now))
    s.workflow.notify(s.session, "escalated", incident, s.now, s.actor, s.data.reason)
    return {"level": incident.escalation_level, "to": incident.escalated_to}


# Actions missing here (accept, triage, suppress, episode) change only the state.
HANDLERS: dict[Action, Handler] = {
    Action.REGISTER: _registered,
    Action.CONFIRM: _registered,
    Action.DISMISS: _dismiss,
    Action.DISPATCH: _dispatch,
    Action.RETURN: _return,
    Action.FEEDBACK: _feedback,
    Action.CHECK: _check,
    Action.PASS: _pass,
    Action.FAIL: _fail,
    Action.CLOSE: _close,
    Action.MERGE: _merge,
    Action.SUPERVISE: _raise_level,
    Action.ESCALATE: _raise_level,
}
