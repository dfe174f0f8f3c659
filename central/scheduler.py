"""Deadlines: colour each open incident's stage clock and escalate when it runs out.

Restart-safe because it keeps nothing in memory: the stage, its start and deadline, and the
colour already acted on are columns of the incident, so a tick after a restart (or after a
long stop) catches up with exactly the escalations that are due, once each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from central.engine import WorkflowEngine
from central.tables import Incident
from central.engine import ActionInput
from central.workflow import OPEN_STATES, SYSTEM

log = logging.getLogger(__name__)

YELLOW_SHARE = 0.8


def deadline_color(started: datetime, deadline: datetime, now: datetime) -> str:
    """green, then yellow at 80 % of the allowed time, red once it has passed."""
    if now >= deadline:
        return "red"
    if now >= started + (deadline - started) * YELLOW_SHARE:
        return "yellow"
    return "green"


@dataclass
class TickResult:
    yellow: list[int] = field(default_factory=list)
    red: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.yellow or self.red)


class DeadlineScheduler:
    def __init__(self, sessions: sessionmaker[Session], engine: WorkflowEngine, interval_s: float = 15.0,
                 after_change: Callable[[TickResult], None] | None = None) -> None:
        self.sessions = sessions
        self.engine = engine
        self.interval_s = interval_s
        self.after_change = after_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime | None = None) -> TickResult:
        now = now or self.engine.clock.now()
        result = TickResult()
        with self.sessions() as session:
            rows = session.scalars(
                select(Incident).where(
                    Incident.state.in_(OPEN_STATES),
                    Incident.stage_deadline_at.is_not(None),
                    or_(Incident.deadline_color.is_(None), Incident.deadline_color != "red"),
                )
            ).all()
            for incident in rows:
                assert incident.stage_started_at is not None and incident.stage_deadline_at is not None
                color = deadline_color(incident.stage_started_at, incident.stage_deadline_at, now)
                if color == incident.deadline_color:
                    continue
                incident.deadline_color = color
                if color == "yellow":
                    result.yellow.append(incident.id)
                elif color == "red":
                    incident.ever_overdue = True
                    self.engine.act(session, incident, "escalate", SYSTEM,
                                    ActionInput(reason=f"{incident.stage} deadline passed"), now)
                    result.red.append(incident.id)
            session.commit()
        if result.changed:
            log.info("deadlines: %d yellow, %d overdue and escalated", len(result.yellow), len(result.red))
            if self.after_change is not None:
                self.after_change(result)
        return result

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the scheduler
                log.exception("deadline tick failed; retrying")
            self._stop.wait(self.interval_s)
