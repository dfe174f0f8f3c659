"""Watches one camera's health: offline and tamper rules, the reference view, and the contract
events and retained health state they produce."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from broker.cameraconfig import CameraConfig
from broker.payloads import EvidenceRef, HazardEvent, HazardKind, Phase
from edge.episodes import episode_start, incident_key
from edge.evidence import EvidenceBlob, annotated_snapshot
from edge.health import ConditionRule, HealthEvent, OfflineRule
from edge.tamper import measure, median_view, small_grey, tamper_cause

log = logging.getLogger(__name__)

# A reference view must itself look normal: enough contrast, and taken once the stream settled.
_REFERENCE_MIN_STD = 15.0
_REFERENCE_SETTLE_S = 3.0
# The reference is the median of several views this far apart: a car that passes through one or
# two of them is not in it (a reference of a passing car made the empty lot look "defocused" and
# "turned away"). Spread over ~8 s: a car crosses a camera's view in 2-4 s.
_REFERENCE_VIEWS = 5
_REFERENCE_SPACING_S = 2.0


@dataclass(frozen=True)
class CameraEmission:
    event: HazardEvent
    blobs: list[EvidenceBlob]


class CameraWatch:
    def __init__(
        self,
        *,
        site: str,
        edge: str,
        camera: CameraConfig,
        next_seq: Callable[[], int],
        reference_path: Path,
        started_at: float,
    ) -> None:
        self.site, self.edge, self.camera = site, edge, camera
        self._next_seq = next_seq
        self.offline = OfflineRule(camera.offline_s, started_at)
        self.tamper = ConditionRule(HazardKind.CAMERA_TAMPERED, camera.tamper.dwell_s, camera.tamper.clear_s)
        self.tamper_cause: str | None = None
        self._reference_path = Path(camera.tamper.reference_image) if camera.tamper.reference_image else reference_path
        self._reference: np.ndarray | None = self._load_reference()
        self._first_frame_t: float | None = None
        self._candidates: list[tuple[float, np.ndarray]] = []
        self._last_tamper_check: float | None = None
        self._open: dict[HazardKind, tuple[str, datetime]] = {}

    def _load_reference(self) -> np.ndarray | None:
        if self._reference_path.is_file():
            image = cv2.imread(str(self._reference_path))
            if image is not None:
                return small_grey(image)
            log.warning("camera %s: reference view %s is not an image; capturing a new one", self.camera.id, self._reference_path)
        return None

    def on_frame(self, picture: Callable[[], np.ndarray], t: float, wall: datetime) -> list[CameraEmission]:
        """``picture`` gives the frame (BGR) when a rule needs it: most frames only tell the offline
        rule that the camera is alive, and converting each to BGR costs about as much as decoding it."""
        out = [self._emit(ev, wall, picture()) for ev in self.offline.frame(t)]
        if self._first_frame_t is None:
            self._first_frame_t = t
        if not self.camera.tamper.enabled:
            return out
        if self._last_tamper_check is not None and t - self._last_tamper_check < 1.0:
            return out  # one check a second is plenty for a condition that must last seconds
        self._last_tamper_check = t
        frame_bgr = picture()
        if self._reference is None:
            self._maybe_capture_reference(frame_bgr, t)
        self.tamper_cause = tamper_cause(measure(frame_bgr, self._reference), self.camera.tamper)
        out += [self._emit(ev, wall, frame_bgr) for ev in self.tamper.step(t, self.tamper_cause)]
        return out

    def tick(self, t: float, wall: datetime, reader_cause: str | None,
             last_frame: float | None = None) -> list[CameraEmission]:
        return [self._emit(ev, wall, None) for ev in self.offline.tick(t, reader_cause, last_frame)]

    def _maybe_capture_reference(self, frame_bgr: np.ndarray, t: float) -> None:
        assert self._first_frame_t is not None
        grey = small_grey(frame_bgr)
        if t - self._first_frame_t < _REFERENCE_SETTLE_S or grey.std() < _REFERENCE_MIN_STD:
            return
        if self._candidates and t - self._candidates[-1][0] < _REFERENCE_SPACING_S:
            return
        self._candidates.append((t, grey))
        if len(self._candidates) < _REFERENCE_VIEWS:
            return
        self._reference = median_view([view for _, view in self._candidates])
        self._candidates = []
        # Kept as compared (small, grey): a restart reuses exactly this view.
        self._reference_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(self._reference_path), self._reference)
        log.info("camera %s: captured reference view %s", self.camera.id, self._reference_path)

    def _emit(self, ev: HealthEvent, wall: datetime, frame_bgr: np.ndarray | None) -> CameraEmission:
        wall = wall.astimezone(UTC)
        if ev.phase == Phase.START:
            started_at = episode_start(wall, ev.t, ev.started_t)
            self._open[ev.hazard] = (incident_key(self.site, self.edge, self.camera.id, None, ev.hazard, started_at), started_at)
            log.warning("camera %s: %s started: %s", self.camera.id, ev.hazard.value, ev.cause)
        # These rules never end what they did not start; the fallback only keeps a bad state visible.
        opened = self._open.pop(ev.hazard, None) if ev.phase == Phase.END else self._open.get(ev.hazard)
        if opened is None:
            opened = (incident_key(self.site, self.edge, self.camera.id, None, ev.hazard, wall), wall)
        key, started_at = opened
        blobs = []
        if frame_bgr is not None:
            title = f"{ev.hazard.value} {ev.phase.value} {self.camera.id}: {ev.cause or ''}"
            blobs.append(annotated_snapshot(frame_bgr, [], [], title=title))
        event = HazardEvent(
            event_id=uuid.uuid4(),
            incident_key=key,
            hazard=ev.hazard,
            phase=ev.phase,
            site=self.site,
            edge=self.edge,
            camera=self.camera.id,
            zone=None,
            started_at=started_at,
            observed_at=max(wall, started_at),
            seq=self._next_seq(),
            score=1.0,
            evidence=[EvidenceRef(sha256=b.sha256, content_type=b.content_type, bytes=len(b.data)) for b in blobs],
            gb28181_channel_id=self.camera.gb28181_channel_id,
        )
        return CameraEmission(event, blobs)
