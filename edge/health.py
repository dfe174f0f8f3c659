"""Camera health as hazards: ``camera_offline`` (no frames for ``offline_s``) and
``camera_tampered`` (covered, defocused or turned away for ``dwell_s``). Pure state machines
fed with the camera clock; the node turns their events into contract events."""

from __future__ import annotations

from dataclasses import dataclass

from broker.payloads import HazardKind, Phase


@dataclass(frozen=True, slots=True)
class HealthEvent:
    hazard: HazardKind
    phase: Phase
    t: float
    started_t: float
    cause: str | None


class OfflineRule:
    """Starts once the camera has sent no frame for ``offline_s``; ends with the first frame after."""

    def __init__(self, offline_s: float, started_at: float) -> None:
        self.offline_s = offline_s
        self._silent_since = started_at  # until the first frame, the camera is silent since start-up
        self._active_since: float | None = None

    @property
    def active(self) -> bool:
        return self._active_since is not None

    def frame(self, t: float) -> list[HealthEvent]:
        self._silent_since = max(self._silent_since, t)
        if self._active_since is None:
            return []
        started, self._active_since = self._active_since, None
        return [HealthEvent(HazardKind.CAMERA_OFFLINE, Phase.END, t, started, "frames resumed")]

    def tick(self, t: float, cause: str | None, last_frame: float | None = None) -> list[HealthEvent]:
        """``last_frame``: when the camera's reader last received a frame. The worker that calls
        ``frame`` may be far behind on a loaded box (waiting for the detector, cutting a clip); the
        camera is not offline while its reader still receives frames."""
        if last_frame is not None:
            self._silent_since = max(self._silent_since, last_frame)
        if self._active_since is None and t - self._silent_since >= self.offline_s:
            self._active_since = self._silent_since
            reason = cause or "no frames"
            return [HealthEvent(HazardKind.CAMERA_OFFLINE, Phase.START, t, self._silent_since,
                                f"no frames for {t - self._silent_since:.0f} s: {reason}")]
        return []


class ConditionRule:
    """A condition seen on sampled frames: start once it held on every sample for ``dwell_s`` and on
    at least ``min_samples`` of them in a row; end after ``clear_s`` without it.

    One normal sample restarts the dwell. Counting the dwell from the first sighting alone let two
    cars passing a parking-lot camera 10 s apart, with a clear view between them, add up to a
    10 s tamper. ``min_samples`` is for a loaded edge that sees a frame every 10 s or more: two
    unlucky samples that far apart say nothing about the seconds between them."""

    def __init__(self, hazard: HazardKind, dwell_s: float, clear_s: float, min_samples: int = 3) -> None:
        self.hazard = hazard
        self.dwell_s = dwell_s
        self.clear_s = clear_s
        self.min_samples = min_samples
        self._seen_since: float | None = None
        self._seen_count = 0
        self._last_seen: float | None = None
        self._active_since: float | None = None

    @property
    def active(self) -> bool:
        return self._active_since is not None

    def step(self, t: float, cause: str | None) -> list[HealthEvent]:
        if cause is not None:
            if self._seen_since is None:
                self._seen_since, self._seen_count = t, 0
            self._seen_count += 1
            self._last_seen = t
            if (self._active_since is None and t - self._seen_since >= self.dwell_s
                    and self._seen_count >= self.min_samples):
                self._active_since = self._seen_since
                return [HealthEvent(self.hazard, Phase.START, t, self._seen_since, cause)]
            return []
        if self._active_since is None:
            self._seen_since, self._seen_count, self._last_seen = None, 0, None
            return []
        if self._last_seen is not None and t - self._last_seen >= self.clear_s:
            self._seen_since, self._seen_count, self._last_seen = None, 0, None
            started, self._active_since = self._active_since, None
            return [HealthEvent(self.hazard, Phase.END, t, started, "view restored")]
        return []
