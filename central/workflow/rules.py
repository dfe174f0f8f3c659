"""The incident state machine: every transition, who may take it, and nothing else (pure).

States follow GB/T 30428 (数字化城管): received → triage → registered → dispatched → in_progress →
feedback → checking → closed, with ``returned`` (wrong assignee) and rework (checking failed,
back to in_progress). Escalation and 督办 (``supervise``) change no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from central.workflow.vocabulary import Action, Role, State

RECEIVED, TRIAGE, REGISTERED, DISPATCHED = State.RECEIVED, State.TRIAGE, State.REGISTERED, State.DISPATCHED
IN_PROGRESS, FEEDBACK, CHECKING = State.IN_PROGRESS, State.FEEDBACK, State.CHECKING
CLOSED, RETURNED = State.CLOSED, State.RETURNED
STATES = tuple(State)
OPEN_STATES = frozenset(STATES) - {CLOSED}

# Which deadline clock runs in each state (configured per hazard type and stage).
STAGE_OF_STATE: dict[str, str] = {
    REGISTERED: "dispatch",
    RETURNED: "dispatch",
    DISPATCHED: "accept",
    IN_PROGRESS: "handle",
    FEEDBACK: "check",
    CHECKING: "check",
}

ASSIGNEE = "assignee"  # a pseudo-role: the worker or unit the incident is dispatched to
CHECKERS = frozenset({Role.MONITOR, Role.SUPERVISOR, Role.GRID_CHIEF, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[str]
    target: str | None  # None: the state stays (supervise)
    roles: frozenset[str]
    needs_reason: bool = False
    # Checking by a second person: whoever gave the feedback may not pass or fail it.
    not_feedback_author: bool = False


def _t(sources: Iterable[str], target: str | None, roles: Iterable[str], **kw: bool) -> Transition:
    return Transition(frozenset(sources), target, frozenset(roles), **kw)


# Actions people take through the API.
ACTIONS: dict[str, Transition] = {
    Action.CONFIRM: _t({TRIAGE}, REGISTERED, {Role.MONITOR, Role.ADMIN}),
    Action.DISMISS: _t({TRIAGE}, CLOSED, {Role.MONITOR, Role.ADMIN}, needs_reason=True),
    Action.DISPATCH: _t({REGISTERED, RETURNED}, DISPATCHED, {Role.MONITOR, Role.GRID_CHIEF, Role.ADMIN}),
    Action.ACCEPT: _t({DISPATCHED}, IN_PROGRESS, {ASSIGNEE, Role.ADMIN}),
    Action.RETURN: _t({DISPATCHED}, RETURNED, {ASSIGNEE, Role.ADMIN}, needs_reason=True),
    Action.FEEDBACK: _t({IN_PROGRESS}, FEEDBACK, {ASSIGNEE, Role.ADMIN}),
    Action.CHECK: _t({FEEDBACK}, CHECKING, CHECKERS),
    Action.PASS: _t({CHECKING}, CLOSED, CHECKERS, not_feedback_author=True),
    Action.FAIL: _t({CHECKING}, IN_PROGRESS, CHECKERS, needs_reason=True, not_feedback_author=True),
    Action.CLOSE: _t(OPEN_STATES, CLOSED, {Role.SUPERVISOR, Role.ADMIN}, needs_reason=True),
    Action.MERGE: _t(OPEN_STATES, CLOSED, {Role.MONITOR, Role.ADMIN}),
    Action.SUPERVISE: _t(OPEN_STATES, None, {Role.SUPERVISOR, Role.GRID_CHIEF, Role.ADMIN}),
}

# Steps central itself takes (ingest, rules, scheduler, the edge's recheck answer): no role check.
SYSTEM_STEPS: dict[str, Transition] = {
    Action.TRIAGE: _t({RECEIVED}, TRIAGE, set()),
    Action.REGISTER: _t({RECEIVED}, REGISTERED, set()),
    Action.SUPPRESS: _t({RECEIVED}, CLOSED, set()),
    Action.DISPATCH: ACTIONS[Action.DISPATCH],
    Action.PASS: ACTIONS[Action.PASS],
    Action.FAIL: ACTIONS[Action.FAIL],
    Action.ESCALATE: _t(OPEN_STATES, None, set()),
    Action.EPISODE: _t(OPEN_STATES, None, set()),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (with the scope their grid nodes give) or central itself (``system``)."""

    username: str
    role: str
    worker: str | None = None
    unit: str | None = None
    scope: frozenset[str] | None = None  # None: the whole site
    system: bool = False

    def in_scope(self, grid_cell: str | None) -> bool:
        if self.system or self.scope is None:
            return True
        return grid_cell is not None and grid_cell in self.scope


SYSTEM = Actor("system", "system", system=True)


class IncidentFacts(Protocol):
    """What the rules look at: an `IncidentView` or the ORM row."""

    @property
    def state(self) -> str: ...
    @property
    def grid_cell(self) -> str | None: ...
    @property
    def assigned_worker(self) -> str | None: ...
    @property
    def assigned_unit(self) -> str | None: ...
    @property
    def feedback_by(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class IncidentView:
    """The facts the rules look at, without a database row (tests, previews)."""

    state: str
    grid_cell: str | None
    assigned_worker: str | None
    assigned_unit: str | None
    feedback_by: str | None = None


class IllegalTransition(Exception):
    """409: the action is not possible in this state."""

    def __init__(self, action: str, state: str, allowed: list[str]) -> None:
        self.action, self.state, self.allowed = action, state, allowed
        super().__init__(f"cannot {action} an incident that is {state}; possible now: {', '.join(allowed) or 'nothing'}")


class Forbidden(Exception):
    """403: the action exists here but not for this user (role or grid scope)."""


class MissingReason(ValueError):
    pass


def is_assignee(actor: Actor, incident: IncidentFacts) -> bool:
    if incident.assigned_unit is not None:
        return actor.role == "unit" and actor.unit == incident.assigned_unit
    return actor.role == "grid_worker" and actor.worker is not None and actor.worker == incident.assigned_worker


@dataclass(frozen=True, slots=True)
class Sees:
    """Which incidents an actor sees, as data: any incident matching one of the terms (none: nothing;
    ``everything``: all). The one definition both ``can_see`` (Python) and the API's SQL filter
    (``routes_incidents.visible``) are rendered from."""

    everything: bool = False
    unit: str | None = None  # assigned to this unit
    worker: str | None = None  # assigned to this grid worker
    cells: frozenset[str] | None = None  # in one of these grid cells


def access_rule(actor: Actor) -> Sees:
    if actor.system or actor.role == Role.ADMIN:
        return Sees(everything=True)
    if actor.role == Role.UNIT:
        return Sees(unit=actor.unit)
    if actor.role == Role.GRID_WORKER:
        return Sees(worker=actor.worker, cells=actor.scope)
    return Sees(everything=True) if actor.scope is None else Sees(cells=actor.scope)


def can_see(actor: Actor, incident: IncidentFacts) -> bool:
    rule = access_rule(actor)
    return (rule.everything
            or (rule.unit is not None and incident.assigned_unit == rule.unit)
            or (rule.worker is not None and incident.assigned_worker == rule.worker)
            or (rule.cells is not None and incident.grid_cell is not None and incident.grid_cell in rule.cells))


def _permitted(actor: Actor, t: Transition, incident: IncidentFacts) -> bool:
    if actor.system:
        return True
    if not can_see(actor, incident):
        return False
    role_ok = actor.role in t.roles or (ASSIGNEE in t.roles and is_assignee(actor, incident))
    if not role_ok:
        return False
    if t.not_feedback_author and actor.role != "admin" and incident.feedback_by == actor.username:
        return False
    return True


def possible_actions(state: str) -> list[str]:
    return [name for name, t in ACTIONS.items() if state in t.sources]


def allowed_actions(actor: Actor, incident: IncidentFacts) -> list[str]:
    """The actions this actor may take on this incident now (the console shows these buttons)."""
    return [
        name for name, t in ACTIONS.items() if incident.state in t.sources and _permitted(actor, t, incident)
    ]


def check_action(action: str, actor: Actor, incident: IncidentFacts, reason: str | None = None) -> Transition:
    """The transition to apply, or IllegalTransition (409) / Forbidden (403) / MissingReason (422)."""
    table = SYSTEM_STEPS if actor.system else ACTIONS
    t = table.get(action)
    if t is None:
        raise IllegalTransition(action, incident.state, possible_actions(incident.state))
    if incident.state not in t.sources:
        raise IllegalTransition(action, incident.state, possible_actions(incident.state))
    if not _permitted(actor, t, incident):
        raise Forbidden(f"{actor.username} ({actor.role}) may not {action} this incident")
    if t.needs_reason and not actor.system and not (reason and reason.strip()):
        raise MissingReason(f"{action} needs a reason")
    return t


# -- silences: a camera, zone or hazard muted for a while (pure, for the workflow and the ingest) ---

class Silence(Protocol):
    @property
    def site(self) -> str | None: ...
    @property
    def camera(self) -> str | None: ...
    @property
    def zone(self) -> str | None: ...
    @property
    def hazard(self) -> str | None: ...
    @property
    def until(self) -> datetime: ...


def silenced_by(silences: Sequence[Silence], site: str, camera: str | None, zone: str | None, hazard: str,
                now: datetime) -> Silence | None:
    """The silence in force for a hazard at this place, if any (the workflow's and the planner's rule)."""
    if camera is None:
        return None
    for s in silences:
        if s.camera == camera and s.until > now and s.site in (None, site) and s.zone in (None, zone) \
                and s.hazard in (None, hazard):
            return s
    return None
