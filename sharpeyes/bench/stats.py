"""Pure arithmetic of the benchmark: cadence kept, percentiles, ratios. No I/O here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# A sample is on time when it follows the previous one by at most this share of the period over
# the period itself (keyframes arrive with network jitter) and its analysis ended within one
# period of the frame arriving (otherwise the camera falls behind).
GAP_TOLERANCE = 0.25
ON_TIME_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class Sample:
    """One analysed frame: when the frame arrived, and when its analysis started and ended (monotonic s)."""

    frame_t: float
    started: float
    ended: float
    decode_s: float = 0.0
    infer_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Cadence:
    expected: int
    on_time: int

    @property
    def share(self) -> float:
        return min(1.0, self.on_time / self.expected) if self.expected else 0.0

    @property
    def sustained(self) -> bool:
        return self.expected > 0 and self.share >= ON_TIME_SHARE


def cadence(samples: Sequence[Sample], window: tuple[float, float], fps: float) -> Cadence:
    """How many of the samples the window called for were taken on time.

    ``expected`` is the window's length times the configured rate; a missed sample shows up as a
    long gap, so it is simply absent from ``on_time``.
    """
    period = 1.0 / fps
    start, end = window
    expected = math.floor((end - start) * fps + 1e-9)
    ordered = sorted(samples, key=lambda s: s.frame_t)
    on_time = 0
    previous: Sample | None = None
    for sample in ordered:
        if start <= sample.frame_t < end:
            gap_ok = previous is None or sample.frame_t - previous.frame_t <= period * (1 + GAP_TOLERANCE)
            lag_ok = sample.ended - sample.frame_t <= period
            if gap_ok and lag_ok:
                on_time += 1
        previous = sample
    return Cadence(expected, on_time)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def per_camera_second(cpu_s: float, cameras: int, seconds: float) -> float:
    return cpu_s / (cameras * seconds) if cameras and seconds > 0 else float("nan")
