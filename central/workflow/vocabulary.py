"""The domain's words, defined once: incident states, close reasons (outcomes), conditions, roles,
workflow actions, command and actuation states. StrEnums, so they compare and hash like the
strings stored in the database and sent over the API; migration 0008 turns the stored ones into
database constraints (``allowed``), so no code path can write a word the domain does not have."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"
    TRIAGE = "triage"
    REGISTERED = "registered"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    FEEDBACK = "feedback"
    CHECKING = "checking"
    CLOSED = "closed"
    RETURNED = "returned"


class CloseReason(StrEnum):
    FIXED = "fixed"
    FALSE_ALARM = "false_alarm"
    DUPLICATE = "duplicate"
    TRANSFERRED = "transferred"
    FORCED = "forced"
    SUPPRESSED = "suppressed"


class Condition(StrEnum):
    """The camera's view of the hazard, apart from the workflow state."""

    ACTIVE = "active"
    CLEARED = "cleared"


class Role(StrEnum):
    ADMIN = "admin"
    MONITOR = "monitor"
    SUPERVISOR = "supervisor"
    GRID_CHIEF = "grid_chief"
    GRID_WORKER = "grid_worker"
    UNIT = "unit"


class Action(StrEnum):
    """Workflow actions: those people take through the API, then the steps central takes itself."""

    CONFIRM = "confirm"
    DISMISS = "dismiss"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    RETURN = "return"
    FEEDBACK = "feedback"
    CHECK = "check"
    PASS = "pass"
    FAIL = "fail"
    CLOSE = "close"
    MERGE = "merge"
    SUPERVISE = "supervise"
    TRIAGE = "triage"
    REGISTER = "register"
    SUPPRESS = "suppress"
    ESCALATE = "escalate"
    EPISODE = "episode"


class CommandStatus(StrEnum):
    PENDING = "pending"
    OK = "ok"
    ERROR = "error"


class IncidentSource(StrEnum):
    CAMERA = "camera"
    OPEN311 = "open311"


# (table, column, words, nullable): what migration 0008 enforces in the database.
CONSTRAINED: tuple[tuple[str, str, type[StrEnum], bool], ...] = (
    ("incidents", "state", State, False),
    ("incidents", "close_reason", CloseReason, True),
    ("incidents", "condition", Condition, False),
    ("incidents", "source", IncidentSource, False),
    ("users", "role", Role, False),
    ("commands", "status", CommandStatus, False),
)


def allowed(words: type[StrEnum]) -> str:
    """The SQL list of the words, for a CHECK constraint or a trigger: 'a', 'b', ..."""
    return ", ".join(f"'{w.value}'" for w in words)
