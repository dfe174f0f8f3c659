"""Multi-object tracking per camera: ByteTrack from Roboflow's ``trackers`` (supervision's
tracker, which moved there), configured for a camera sampled at its detect cadence.

The tracker only names things: it gives each detection a ``track_id`` that stays the same while
the tracker believes it is the same object. Rules decide what an identity means for their
hazard (the fire-lane rule keeps the place where a vehicle stopped as the final word).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from models.detector import Detection

# ByteTrack counts its lost-track buffer in frames of a 30 fps video.
_BYTETRACK_REFERENCE_FPS = 30.0


class Tracker:
    """Assigns ``track_id`` to one camera's detections, one sample at a time.

    ``bridge_samples``: how many consecutive samples an object may go undetected and keep its id
    (a parked car lost at dusk or behind a passing bus), never less than ``min_bridge_s``.
    ``activation_score``: a detection must score this much to start a new track.
    ``high_score``: ByteTrack's split; detections below it (e.g. a parked car at dusk) only
    continue existing tracks and never start new ones. It sits below the zones' usual
    ``min_score`` (0.35): a car the detector keeps seeing at 0.4 must get an id, which
    ByteTrack's own default (0.6) would never give it.
    """

    def __init__(
        self,
        detect_fps: float,
        *,
        bridge_samples: int = 10,
        min_bridge_s: float = 5.0,
        activation_score: float = 0.3,
        high_score: float = 0.3,
        min_iou: float = 0.1,
    ) -> None:
        if detect_fps <= 0:
            raise ValueError("detect_fps must be positive")
        self.detect_fps = detect_fps
        self.bridge_s = max(bridge_samples / detect_fps, min_bridge_s)
        self._settings: dict[str, Any] = dict(
            frame_rate=detect_fps,
            lost_track_buffer=int(round(self.bridge_s * _BYTETRACK_REFERENCE_FPS)),
            track_activation_threshold=activation_score,
            high_conf_det_threshold=high_score,
            minimum_iou_threshold=min_iou,
            # An id on the second sighting: at 1 fps, waiting longer would delay every dwell.
            minimum_consecutive_frames=2,
        )
        self._tracker = self._new_tracker()
        self._last_t: float | None = None
        self._clock_offset = 0.0

    def _new_tracker(self) -> Any:
        from trackers import ByteTrackTracker

        return ByteTrackTracker(**self._settings)

    def update(self, t: float, detections: list[Detection]) -> list[Detection]:
        """The same detections, in the same order, with ``track_id`` set (None: not yet confirmed).

        ``t`` is the camera clock in seconds. When it goes back (a reconnect restarts the
        stream's clock) or repeats, tracking goes on as if one sample period had passed: the
        parked cars are usually still there, and restarting the tracker would hand their old ids
        to other objects while the rules still remember them.
        """
        now = t + self._clock_offset
        if self._last_t is not None and now <= self._last_t:
            self._clock_offset += self._last_t - now + 1.0 / self.detect_fps
            now = t + self._clock_offset
        self._last_t = now
        ids = self._track_ids(now, detections)
        return [replace(d, track_id=tid) for d, tid in zip(detections, ids, strict=True)]

    def _track_ids(self, t: float, detections: list[Detection]) -> list[int | None]:
        import supervision as sv

        n = len(detections)
        if n:
            boxes = np.array([d.box for d in detections], dtype=np.float32).reshape(n, 4)
            found = sv.Detections(
                xyxy=boxes,
                confidence=np.array([d.score for d in detections], dtype=np.float32),
                class_id=np.array([d.class_id for d in detections], dtype=int),
                data={"index": np.arange(n)},
            )
        else:
            found = sv.Detections.empty()
        tracked = self._tracker.update(found, timestamp=t)
        ids: list[int | None] = [None] * n
        if len(tracked) and "index" in tracked.data:
            for index, tracker_id in zip(tracked.data["index"], tracked.tracker_id, strict=True):
                ids[int(index)] = int(tracker_id) if tracker_id >= 0 else None
        return ids
