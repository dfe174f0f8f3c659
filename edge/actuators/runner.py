"""One actuator's thread: applies what happened to its HoldBook, carries out the steps on the
device, and records every one (sharpeyes.actuation/1). A device that hangs or is unreachable
holds up this thread only, never a camera's detection or another actuator."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.actuatorconfig import ActuatorConfig
from broker.payloads import Actuation, ActuationAction, ActuatorFigures
from edge.actuators.drivers import ActuatorError, Driver
from edge.actuators.holds import HoldBook, Step

log = logging.getLogger(__name__)

Change = Callable[[HoldBook, float], list[Step]]
IDLE_WAIT_S = 1.0


@dataclass
class ActuatorCounts:
    holds: int = 0
    failures: int = 0
    last_error: str | None = None
    per_zone: Counter[tuple[str, str]] = field(default_factory=Counter)  # holds per (camera, zone)
    released: int = 0
    held_seconds: float = 0.0  # summed over released holds (metrics: a summary of hold durations)
    # Frame arrival -> acknowledged, of the latest holds (the benchmark reads them).
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class ActuatorRunner:
    def __init__(self, config: ActuatorConfig, driver: Driver, *, site: str, edge: str,
                 record: Callable[[Actuation], None], clock: Callable[[], float] = time.monotonic,
                 on_failing: Callable[[], None] | None = None) -> None:
        """``on_failing`` is called when the device stops or starts answering again (health)."""
        self.config = config
        self.driver = driver
        self.site, self.edge = site, edge
        self._record = record
        self._clock = clock
        self.book = HoldBook(rearm_s=config.rearm_s(), max_hold_s=config.max_hold_s)
        self.counts = ActuatorCounts()
        self._inbox: queue.SimpleQueue[tuple[Change, threading.Event | None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"actuator-{config.id}", daemon=True)
        self._failing = False
        self._on_failing = on_failing

    def start(self) -> None:
        self._thread.start()

    def submit(self, change: Change, done: threading.Event | None = None) -> None:
        """Apply CHANGE on the actuator's thread; DONE is set once its steps are carried out."""
        self._inbox.put((change, done))

    def stop(self, timeout: float = 5.0) -> None:
        """Let go of every hold (reason shutdown) and end the thread."""
        self._inbox.put(None)
        self._thread.join(timeout)
        self.driver.close()

    def figures(self) -> ActuatorFigures:
        state = "failing" if self._failing else "held" if self.book.holds else "idle"
        return ActuatorFigures(state=state, holds=self.counts.holds, failures=self.counts.failures,
                               last_error=self.counts.last_error)

    def _run(self) -> None:
        while True:
            due = self.book.next_due()
            wait = IDLE_WAIT_S if due is None else min(IDLE_WAIT_S, max(0.0, due - self._clock()))
            try:
                item = self._inbox.get(timeout=wait)
            except queue.Empty:
                item = (lambda book, now: book.tick(now), None)  # nothing happened: only the clock moved
            if item is None:
                self._carry_out(self.book.shutdown())
                return
            change, done = item
            try:
                self._carry_out(change(self.book, self._clock()))
            except Exception:  # noqa: BLE001 - a bug here must not leave the thread dead with a hold on
                log.exception("actuator %s: unexpected error; letting go of its holds", self.config.id)
                self._carry_out(self.book.shutdown())
            finally:
                if done is not None:
                    done.set()

    def _carry_out(self, steps: list[Step]) -> None:
        for step in steps:
            first = {id(h): not h.acknowledged for h in step.holds}
            ok, error = True, None
            if step.device:
                context = self._context(step)
                try:
                    if step.action == ActuationAction.RELEASE:
                        self.driver.release(context)
                    else:
                        self.driver.arm(self.config.hold_window_s(), context)
                except ActuatorError as exc:
                    ok, error = False, str(exc)
                except Exception as exc:  # noqa: BLE001 - any driver failure is the device's failure
                    ok, error = False, f"{type(exc).__name__}: {exc}"
            done = self._clock()
            follow = self.book.acknowledged(step, ok, done) if step.device else []
            self._note(step, ok, error)
            self._records(step, ok, error, done, first)
            self._carry_out(follow)

    def _note(self, step: Step, ok: bool, error: str | None) -> None:
        if not step.device:
            return
        if ok:
            if self._failing:
                log.info("actuator %s answers again", self.config.id)
                self._failing = False
                self._failing_changed()
            return
        self.counts.failures += 1
        self.counts.last_error = error
        if not self._failing:
            log.warning("actuator %s: %s (retrying while the hazard lasts)", self.config.id, error)
            self._failing = True
            self._failing_changed()

    def _failing_changed(self) -> None:
        if self._on_failing is not None:
            try:
                self._on_failing()
            except Exception:  # noqa: BLE001 - reporting must not stop the actuator
                log.exception("actuator %s: reporting its health failed", self.config.id)

    def _records(self, step: Step, ok: bool, error: str | None, done: float, first: dict[int, bool]) -> None:
        wall = datetime.now(UTC)
        for hold in step.holds:
            action, latency = step.action, None
            if action != ActuationAction.RELEASE:
                action = ActuationAction.HOLD if first[id(hold)] else ActuationAction.REARM
                if ok and first[id(hold)]:
                    latency = round((done - hold.frame_monotonic) * 1000, 1)
                    self.counts.holds += 1
                    self.counts.per_zone[(hold.camera, hold.zone)] += 1
                    self.counts.latencies_ms.append(latency)
            else:
                self.counts.released += 1
                self.counts.held_seconds += done - hold.since
            record = Actuation(
                event_id=uuid.uuid4(), site=self.site, edge=self.edge, camera=hold.camera, zone=hold.zone,
                actuator=self.config.id, kind=self.config.kind, action=action, reason=step.reason, ok=ok,
                error=error[:500] if error else None, incident_key=hold.incident_key, at=wall,
                held_since=hold.since_wall, latency_ms=latency, by=step.by,
            )
            if action != ActuationAction.REARM or not ok:
                log.info("actuator %s %s %s/%s%s%s", self.config.id, action.value, hold.camera, hold.zone,
                         f" ({step.reason.value})" if step.reason else "", "" if ok else f" FAILED: {error}")
            self._record(record)

    @staticmethod
    def _context(step: Step) -> dict[str, str]:
        if not step.holds:
            return {}
        hold = step.holds[0]
        context = {"camera": hold.camera, "zone": hold.zone, "incident_key": hold.incident_key}
        if step.reason is not None:
            context["reason"] = step.reason.value
        return context
