"""The scene-change gate: skip the detector while a camera's zones look as they did at the last
detection, and let the rules see the last detections again (dwell keeps counting).

A fire lane with parked cars or an empty corridor looks the same sample after sample; on a box
with 64 cameras most detections would only confirm what the last one saw. The measure: the zones'
bounding area as a small grey thumbnail (about 96 px across, lightly blurred against sensor noise
and compression), each thumbnail's own mean taken off (a slow light change moves every pixel
alike and is ignored), then the mean absolute difference per 8x8 block against the thumbnail of
the last *analysed* frame. The largest block decides: above ``threshold`` grey levels something
moved in or out, and the detector runs at once.

Failure mode, by construction: a change too small to trip any block (a car creeping in over
minutes) still accumulates against the reference, which moves only when the detector runs; and a
full detection runs at least every ``max_skip_s`` whatever the thumbnails say, so nothing hides
for longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from broker.zoneconfig import SceneGateConfig, ZoneConfig

THUMB_WIDTH = 96
BLOCK = 8
NO_ZONES_MAX_SKIP_S = 30.0


def max_skip_for(zones: list[ZoneConfig]) -> float:
    # Full detections at least this often, by zone kind (broker/zonekinds.py): a parked car matters
    # after minutes, an e-bike wheeled into a lift within seconds.
    return min((z.spec.sampling.max_skip_s for z in zones), default=NO_ZONES_MAX_SKIP_S)


def zones_area(zones: list[ZoneConfig], margin: float = 0.05) -> tuple[float, float, float, float]:
    """The normalised box around every zone (the whole frame without zones), with a margin."""
    if not zones:
        return 0.0, 0.0, 1.0, 1.0
    xs = [x for z in zones for x, _ in z.polygon]
    ys = [y for z in zones for _, y in z.polygon]
    return max(0.0, min(xs) - margin), max(0.0, min(ys) - margin), min(1.0, max(xs) + margin), min(1.0, max(ys) + margin)


def thumbnail(frame_bgr: np.ndarray, area: tuple[float, float, float, float]) -> np.ndarray:
    h, w = frame_bgr.shape[:2]
    x1, y1 = int(area[0] * w), int(area[1] * h)
    crop = frame_bgr[y1:max(y1 + 1, int(area[3] * h)), x1:max(x1 + 1, int(area[2] * w))]
    height = max(BLOCK, round(THUMB_WIDTH * crop.shape[0] / max(1, crop.shape[1])))
    small = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)
    return grey - float(grey.mean())


def change(reference: np.ndarray, current: np.ndarray) -> float:
    """The largest block's mean absolute difference, in grey levels."""
    diff = np.abs(current - reference)
    rows, cols = diff.shape[0] // BLOCK, diff.shape[1] // BLOCK
    blocks = diff[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    return float(blocks.max())


@dataclass
class GateCounts:
    detected: int = 0
    gated: int = 0


class SceneGate:
    """Per camera; not thread-safe (one camera's samples come one at a time)."""

    def __init__(self, config: SceneGateConfig, zones: list[ZoneConfig]) -> None:
        self.threshold = config.threshold
        self.max_skip_s = config.max_skip_s if config.max_skip_s is not None else max_skip_for(zones)
        self.area = zones_area(zones)
        self.counts = GateCounts()
        self._reference: np.ndarray | None = None
        self._reference_t = float("-inf")
        self._candidate: tuple[float, np.ndarray] | None = None
        self.last_change = 0.0

    def needs_detection(self, frame_bgr: np.ndarray, t: float) -> bool:
        """Whether this sample must run the detector (else the last detections stand)."""
        current = thumbnail(frame_bgr, self.area)
        self._candidate = (t, current)
        if self._reference is None or self._reference.shape != current.shape or t - self._reference_t >= self.max_skip_s:
            return True
        self.last_change = change(self._reference, current)
        return self.last_change > self.threshold

    def analysed(self, frame_bgr: np.ndarray, t: float) -> None:
        """The detector ran on this frame: it is the new reference."""
        if self._candidate is not None and self._candidate[0] == t:
            self._reference = self._candidate[1]
        else:
            self._reference = thumbnail(frame_bgr, self.area)
        self._reference_t = t
        self._candidate = None
        self.counts.detected += 1

    def reused(self) -> None:
        self.counts.gated += 1
