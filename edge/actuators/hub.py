"""Every actuator of one edge, and which zones drive which: what the camera workers, the health
watch, central's ``release`` command and shutdown call. Nothing here waits on a device."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from broker.actuatorconfig import ActuatorConfig
from broker.cameraconfig import EdgeConfig
from broker.payloads import Actuation, ActuatorFigures
from edge.actuators.drivers import Driver, driver_for
from edge.actuators.holds import HoldBook, Step
from edge.actuators.runner import ActuatorRunner

ZoneKey = tuple[str, str]


def zone_actuators(edge: EdgeConfig) -> dict[ZoneKey, list[str]]:
    return {(camera.id, zone.id): list(zone.actuators) for camera in edge.cameras for zone in camera.zones
            if zone.actuators}


class ActuatorHub:
    def __init__(self, edge: EdgeConfig, *, site: str, record: Callable[[Actuation], None],
                 driver_factory: Callable[[ActuatorConfig], Driver] = driver_for,
                 clock: Callable[[], float] = time.monotonic, on_failing: Callable[[], None] | None = None) -> None:
        self.site, self.edge_id = site, edge.id
        self._on_failing = on_failing
        self._record = record
        self._driver_factory = driver_factory
        self._clock = clock
        self._lock = threading.Lock()
        self.runners: dict[str, ActuatorRunner] = {}
        self._zones: dict[ZoneKey, list[str]] = {}
        self.apply(edge)

    def _runner(self, config: ActuatorConfig) -> ActuatorRunner:
        runner = ActuatorRunner(config, self._driver_factory(config), site=self.site, edge=self.edge_id,
                                record=self._record, clock=self._clock, on_failing=self._on_failing)
        runner.start()
        return runner

    def apply(self, edge: EdgeConfig) -> None:
        """Take a new configuration: unchanged actuators keep their holds, changed or removed ones
        let go (reason shutdown), and zones that no longer drive an actuator end their holds."""
        wanted = {a.id: a for a in edge.actuators}
        zones = zone_actuators(edge)
        with self._lock:
            retired = [self.runners.pop(a) for a, r in list(self.runners.items()) if wanted.get(a) != r.config]
            for actuator_id, config in wanted.items():
                if actuator_id not in self.runners:
                    self.runners[actuator_id] = self._runner(config)
            self._zones = zones
            for actuator_id, runner in self.runners.items():
                runner.submit(partial(_keep_only, driven={key for key, ids in zones.items() if actuator_id in ids}))
        for runner in retired:  # outside the lock: letting go may wait on a slow device
            runner.stop()

    def _driving(self, camera: str, zone: str) -> list[ActuatorRunner]:
        with self._lock:
            return [self.runners[a] for a in self._zones.get((camera, zone), ()) if a in self.runners]

    def drives(self, camera: str, zone: str) -> bool:
        return bool(self._driving(camera, zone))

    def hazard_started(self, camera: str, zone: str, incident_key: str, frame_monotonic: float) -> None:
        wall = datetime.now(UTC)
        for runner in self._driving(camera, zone):
            runner.submit(lambda book, now: book.start(camera, zone, incident_key, frame_monotonic, now, wall))

    def hazard_ended(self, camera: str, zone: str) -> None:
        for runner in self._driving(camera, zone):
            runner.submit(lambda book, now: book.end(camera, zone, now))

    def camera_lost(self, camera: str) -> None:
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.submit(lambda book, now: book.camera_lost(camera, now))

    def release(self, by: str, *, camera: str | None = None, zone: str | None = None, actuator: str | None = None,
                timeout: float = 10.0) -> list[dict[str, str]]:
        """Let go of the matching holds now, by hand; returns what was released. A zone released
        this way is not held again until its hazard ends and starts anew."""
        with self._lock:
            runners = [r for a, r in self.runners.items() if actuator is None or a == actuator]
        released: list[dict[str, str]] = []
        done = [threading.Event() for _ in runners]

        def change(book: HoldBook, now: float, runner: ActuatorRunner) -> list[Step]:
            steps = book.release_by_hand(by, camera, zone)
            released.extend({"actuator": runner.config.id, "camera": h.camera, "zone": h.zone,
                             "incident_key": h.incident_key} for step in steps for h in step.holds)
            return steps

        for runner, finished in zip(runners, done, strict=True):
            runner.submit(partial(change, runner=runner), finished)
        deadline = time.monotonic() + timeout
        for finished in done:
            finished.wait(max(0.0, deadline - time.monotonic()))
        return released

    def figures(self) -> dict[str, ActuatorFigures]:
        with self._lock:
            return {a: r.figures() for a, r in self.runners.items()}

    def stop(self) -> None:
        """Let go of everything (edge shutdown)."""
        with self._lock:
            runners, self.runners = list(self.runners.values()), {}
        for runner in runners:
            runner.stop()


def _keep_only(book: HoldBook, now: float, *, driven: set[ZoneKey]) -> list[Step]:
    steps: list[Step] = []
    for camera, zone in [k for k in book.holds if k not in driven]:
        steps += book.end(camera, zone, now)
    return steps
