"""Deadlines: colour each open incident's stage clock and escalate when it runs out.

Restart-safe because it keeps nothing in memory: the stage, its start and deadline, and the
colour already acted on are columns of the incident, so a tick after a restart (or after a
long stop) catches up with exactly the escalations that are due, once each.

Every ``serve`` process runs a scheduler; only the holder of the ``deadlines`` lease
(``central.store.lease``, renewed each tick, a TTL of three ticks) works, the others skip their ticks
and take over when it stops or its lease runs out. The escalation itself claims the incident
with a conditional update (still this stage, not yet red), so a holder that lost its lease
mid-tick cannot escalate what its successor already did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from central.store.lease import LeaderLease
from central.store.tables import Incident
from central.workflow.engine import ActionInput, WorkflowEngine
from central.workflow.rules import OPEN_STATES, SYSTEM
from central.workflow.vocabulary import Action

log = logging.getLogger(__name__)

YELLOW_SHARE = 0.8
LEASE_NAME = "deadlines"
LEASE_TICKS = 3  # the lease lasts this many ticks: a missed renewal or two does not hand it over
MIN_LEASE_TTL_S = 10.0


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
    leader: bool = True  # False: another process holds the lease and this tick did nothing

    @property
    def changed(self) -> bool:
        return bool(self.yellow or self.red)


@dataclass(frozen=True)
class PeriodicPurge:
    """A job that rides on the deadline lease, at most every ``interval_s`` (the evidence retention
    purge). The server hands it in, so that the workflow does not import the evidence layer above it."""

    interval_s: float
    run: Callable[[Session, datetime], None]


class DeadlineScheduler:
    def __init__(self, sessions: sessionmaker[Session], workflow: WorkflowEngine, interval_s: float = 15.0,
                 after_change: Callable[[TickResult], None] | None = None,
                 lease: LeaderLease | None = None,
                 purge: PeriodicPurge | None = None) -> None:
        self.sessions = sessions
        self.workflow = workflow
        self.interval_s = interval_s
        self.after_change = after_change
        self.lease = lease or LeaderLease(sessions, LEASE_NAME, max(LEASE_TICKS * interval_s, MIN_LEASE_TTL_S),
                                          workflow.clock)
        self.on_tick: Callable[[bool], None] | None = None  # (leader): central's /metrics counts ticks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The retention purge rides on the same lease: one process deletes at a time.
        self.purge = purge
        self._last_purge: datetime | None = None

    def tick(self, now: datetime | None = None) -> TickResult:
        now = now or self.workflow.clock.now()
        leader = not self._stop.is_set() and self.lease.acquire(now)  # stopped: the lease stays handed over
        if self.on_tick is not None:
            self.on_tick(leader)
        if not leader:
            return TickResult(leader=False)
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
                if color != "red":
                    incident.deadline_color = color
                    if color == "yellow":
                        result.yellow.append(incident.id)
                elif self._claim_overdue(session, incident):
                    self.workflow.act(session, incident, Action.ESCALATE, SYSTEM,
                                    ActionInput(reason=f"{incident.stage} deadline passed"), now)
                    result.red.append(incident.id)
            session.commit()
        self._purge_when_due(now)
        if result.changed:
            log.info("deadlines: %d yellow, %d overdue and escalated", len(result.yellow), len(result.red))
            if self.after_change is not None:
                self.after_change(result)
        return result

    def _purge_when_due(self, now: datetime) -> None:
        if self.purge is None:
            return
        if self._last_purge is not None and (now - self._last_purge).total_seconds() < self.purge.interval_s:
            return
        self._last_purge = now
        with self.sessions() as session:
            self.purge.run(session, now)

    @staticmethod
    def _claim_overdue(session: Session, incident: Incident) -> bool:
        """Mark the stage red in the database only if it is still this stage and not red yet.

        The row lock (PostgreSQL) or the write lock (SQLite) makes a second scheduler's claim
        wait for the first one's commit and then match nothing, so one escalation per stage.
        """
        claimed = cast(CursorResult[Any], session.execute(
            update(Incident)
            .where(Incident.id == incident.id, Incident.state.in_(OPEN_STATES),
                   Incident.stage_deadline_at == incident.stage_deadline_at,
                   or_(Incident.deadline_color.is_(None), Incident.deadline_color != "red"))
            .values(deadline_color="red", ever_overdue=True)
            .execution_options(synchronize_session=False)
        )).rowcount == 1
        if claimed:
            set_committed_value(incident, "deadline_color", "red")
            set_committed_value(incident, "ever_overdue", True)
        else:
            log.info("deadlines: incident %s was escalated or moved on elsewhere; skipped", incident.id)
            session.expire(incident)
        return claimed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.lease.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the scheduler
                log.exception("deadline tick failed; retrying")
            self._stop.wait(self.interval_s)
