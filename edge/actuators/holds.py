"""The holds on one actuator, as pure logic: which zones hold it, when to renew, when to let go.

No sockets and no clock of its own: the runner (edge/actuators/runner.py) feeds it what happened
and the monotonic time, carries out the steps it returns on the device, and reports back. The
rules that make a hold safe live here, where they are tested without a device:

- one hold per zone; an actuator shared by zones is on while any of them holds it;
- a hold is renewed every ``rearm_s`` (inside the device's own timing), so a dead edge lets go;
- a hold ends with its hazard, with its camera, after ``max_hold_s`` (escalated to a person), by
  hand, or at shutdown; one ended by the cap or by hand is not taken again in the same episode;
- a device that does not acknowledge is let go of (best effort) and tried again with a doubling
  delay while the hazard lasts; the detector never waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from broker.payloads import ActuationAction, ReleaseReason

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0

ZoneKey = tuple[str, str]  # (camera, zone)


@dataclass
class Hold:
    camera: str
    zone: str
    incident_key: str
    since: float  # monotonic
    since_wall: datetime
    frame_monotonic: float  # arrival of the frame that started the hazard: latency is measured from it
    acknowledged: bool = False  # the device has confirmed it at least once


@dataclass(frozen=True)
class Step:
    """One thing to do: ``device`` steps command the device (arm = set or renew the output,
    release = let go); every step becomes one record per hold it names."""

    action: ActuationAction
    holds: tuple[Hold, ...]
    device: bool = True
    reason: ReleaseReason | None = None
    by: str | None = None


@dataclass
class HoldBook:
    rearm_s: float
    max_hold_s: float
    retry_first_s: float = RETRY_FIRST_S
    retry_max_s: float = RETRY_MAX_S
    holds: dict[ZoneKey, Hold] = field(default_factory=dict)
    # Zones let go by the cap or by hand, with the episode (incident key) they must not take again.
    vetoed: dict[ZoneKey, str] = field(default_factory=dict)
    output_on: bool = False  # the device acknowledged an arm and no release since
    next_arm_at: float | None = None
    failures: int = 0  # in a row

    # -- what happened ---------------------------------------------------------------------------

    def start(self, camera: str, zone: str, incident_key: str, frame_monotonic: float, now: float,
              wall: datetime) -> list[Step]:
        key = (camera, zone)
        if key in self.holds or self.vetoed.get(key) == incident_key:
            return []
        self.vetoed.pop(key, None)
        self.holds[key] = Hold(camera, zone, incident_key, now, wall, frame_monotonic)
        if self.next_arm_at is None or self.next_arm_at > now:
            self.next_arm_at = now
        return self.tick(now)

    def end(self, camera: str, zone: str, now: float) -> list[Step]:
        self.vetoed.pop((camera, zone), None)
        hold = self.holds.pop((camera, zone), None)
        return self._released([hold] if hold else [], ReleaseReason.HAZARD_ENDED)

    def camera_lost(self, camera: str, now: float) -> list[Step]:
        gone = [h for k, h in self.holds.items() if k[0] == camera]
        for hold in gone:
            del self.holds[(hold.camera, hold.zone)]
        return self._released(gone, ReleaseReason.CAMERA_LOST)

    def release_by_hand(self, by: str, camera: str | None = None, zone: str | None = None) -> list[Step]:
        chosen = [h for h in self.holds.values()
                  if (camera is None or h.camera == camera) and (zone is None or h.zone == zone)]
        for hold in chosen:
            del self.holds[(hold.camera, hold.zone)]
            self.vetoed[(hold.camera, hold.zone)] = hold.incident_key
        return self._released(chosen, ReleaseReason.MANUAL, by=by)

    def shutdown(self) -> list[Step]:
        gone = list(self.holds.values())
        self.holds.clear()
        if not gone and self.output_on:
            return [Step(ActuationAction.RELEASE, (), reason=ReleaseReason.SHUTDOWN)]
        return self._released(gone, ReleaseReason.SHUTDOWN)

    def tick(self, now: float) -> list[Step]:
        """The cap, then a due arm or renewal."""
        capped = [h for h in self.holds.values() if now - h.since >= self.max_hold_s]
        for hold in capped:
            del self.holds[(hold.camera, hold.zone)]
            self.vetoed[(hold.camera, hold.zone)] = hold.incident_key
        steps = self._released(capped, ReleaseReason.MAX_HOLD)
        if self.holds and self.next_arm_at is not None and now >= self.next_arm_at:
            action = ActuationAction.REARM if self.output_on else ActuationAction.HOLD
            steps.append(Step(action, tuple(self.holds.values())))
        return steps

    def next_due(self) -> float | None:
        """When ``tick`` has something to do next (monotonic), or None while nothing is held."""
        if not self.holds:
            return None
        cap = min(h.since for h in self.holds.values()) + self.max_hold_s
        return cap if self.next_arm_at is None else min(cap, self.next_arm_at)

    # -- what the device said -------------------------------------------------------------------

    def acknowledged(self, step: Step, ok: bool, now: float) -> list[Step]:
        """Record the device's answer to a device step; returns the best-effort release that
        follows a failed renewal (the output's state is unknown then)."""
        if step.action == ActuationAction.RELEASE:
            if ok or not self.holds:
                self.output_on = False
            return []
        if ok:
            self.failures = 0
            self.output_on = True
            self.next_arm_at = now + self.rearm_s
            for hold in step.holds:
                hold.acknowledged = True
            return []
        self.failures += 1
        self.next_arm_at = now + min(self.retry_max_s, self.retry_first_s * 2 ** (self.failures - 1))
        if self.output_on:
            self.output_on = False
            return [Step(ActuationAction.RELEASE, step.holds, reason=ReleaseReason.ERROR)]
        return []

    # -- helpers --------------------------------------------------------------------------------

    def _released(self, gone: list[Hold], reason: ReleaseReason, by: str | None = None) -> list[Step]:
        if not gone:
            return []
        if self.holds:
            # Other zones still hold the output: only the record changes.
            return [Step(ActuationAction.RELEASE, tuple(gone), device=False, reason=reason, by=by)]
        self.next_arm_at = None
        self.failures = 0
        return [Step(ActuationAction.RELEASE, tuple(gone), reason=reason, by=by)]
