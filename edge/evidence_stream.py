"""The main (evidence) stream of a camera that detects on its sub-stream: open all the time, or
only while an alarm may come.

Beside a sub-stream the main stream feeds nothing but the packet ring that clips are cut from, and
the full-resolution picture that follows an alarm. Demuxing it costs as much as reading the
sub-stream (0.33 of the 0.4 cores that reading 64 fire-lane cameras' 128 streams took:
docs/benchmarks.md), and most cameras hold an RTSP session or two at most. A fire lane is empty
almost all the time and its alarm comes only after a vehicle has stood there for ``dwell_s``
(120 s by default), so the stream can wait until a rule starts timing a vehicle: by the alarm the
ring already holds the clip's ``clip_pre_s``. ``CameraConfig.evidence_on_demand`` decides which.

A lift's e-bike alarms 2 s after it is first seen, before a stream opened then can hold the 5 s
before the alarm. There the detection stream keeps a packet ring too (a 408x576 sub-stream at
384 kbit/s: about 0.6 MB per camera), and a clip whose start the main stream's ring does not reach
back to is cut from it, at the sub-stream's resolution; the full-resolution picture of the alarm
still comes from the main stream. Always open, the main stream's clips cost a second demux per
camera all day (0.14-0.19 of a 2-core box's cores at 24 lifts: docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edge.camera import CameraReader

# How long after a rule stops timing anything the stream stays open: a vehicle that the detector
# loses for a few samples, or one that stops again a moment later, must not cost a reconnect.
LINGER_S = 30.0


class EvidenceDemand:
    """Pure: whether the stream is wanted at ``now``, given whether anything needs it now."""

    def __init__(self, linger_s: float = LINGER_S) -> None:
        self.linger_s = linger_s
        self._last_needed: float | None = None

    def wanted(self, now: float, needed: bool) -> bool:
        if needed:
            self._last_needed = now
            return True
        return self._last_needed is not None and now - self._last_needed < self.linger_s


def reaches_back(first_keyframe: float | None, start: float) -> bool:
    """Pure: whether a ring whose oldest keyframe arrived at ``first_keyframe`` holds a clip that
    starts at ``start`` (a clip starts at a keyframe at or before its first second)."""
    return first_keyframe is not None and first_keyframe <= start


class EvidenceStream:
    """The evidence side of a camera's reading, with a ``CameraReader``'s evidence methods.

    ``open_reader(start_delay_s)`` makes an unstarted reader of the main stream. Always on, the
    reader opens at ``start`` and stays; on demand, ``update`` opens a fresh one when wanted and
    stops it once nothing has wanted it for ``linger_s`` and no clip holds its ring. Counters
    (packets, decodes, decode time) add up over every reader it opened.

    ``preroll``: the detection stream's reader, when it keeps a packet ring of its own. Holds are
    placed on both rings, and a clip that the main stream's ring does not reach back for is cut
    from the detection stream's (counted in ``preroll_clips``).
    """

    decode = "none"

    def __init__(self, open_reader: Callable[[float], CameraReader], *, on_demand: bool,
                 start_delay_s: float = 0.0, linger_s: float = LINGER_S,
                 preroll: CameraReader | None = None) -> None:
        self._open_reader = open_reader
        self.on_demand = on_demand
        self._start_delay_s = start_delay_s
        self._demand = EvidenceDemand(linger_s)
        self._reader: CameraReader | None = None
        self._preroll = preroll
        self._closed_counts = (0, 0, 0.0)  # frames_in, frames_decoded, decode_seconds of closed readers
        self.opens = 0
        self.preroll_clips = 0

    @property
    def is_open(self) -> bool:
        return self._reader is not None

    def start(self) -> None:
        if not self.on_demand:
            self._open(self._start_delay_s)

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.stop()

    def update(self, now: float, needed: bool) -> None:
        """Open or close an on-demand stream; ``needed``: a rule is timing something, or a clip waits."""
        if not self.on_demand:
            return
        wanted = self._demand.wanted(now, needed)
        if wanted and self._reader is None:
            self._open(0.0)
        elif not wanted and self._reader is not None:
            self._close()

    def _open(self, start_delay_s: float) -> None:
        self._reader = self._open_reader(start_delay_s)
        self._reader.start()
        self.opens += 1

    def _close(self) -> None:
        reader, self._reader = self._reader, None
        assert reader is not None
        # Not joined: the reader's thread ends when its read returns (within the I/O timeout), and
        # this camera's worker, which calls here, must not wait for that.
        reader.stop(timeout=0.0)
        frames_in, decoded, seconds = self._closed_counts
        self._closed_counts = (frames_in + reader.frames_in, decoded + reader.frames_decoded,
                               seconds + reader.decode_seconds)

    # -- what the worker asks of the evidence stream (no-ops or empty while it is closed) ----------
    # Each reads the reader once: a recheck asks from the command thread while the worker may close it.
    def hold(self, key: object, since: float) -> None:
        if (reader := self._reader) is not None:
            reader.hold(key, since)
        if self._preroll is not None:
            self._preroll.hold(key, since)

    def release(self, key: object) -> None:
        if (reader := self._reader) is not None:
            reader.release(key)
        if self._preroll is not None:
            self._preroll.release(key)

    def packets_between(self, start: float, end: float) -> tuple[Any, list[Any]]:
        reader = self._reader
        if reader is not None and (self._preroll is None or reaches_back(reader.first_keyframe_at(), start)):
            return reader.packets_between(start, end)
        if self._preroll is None:
            return None, []
        self.preroll_clips += 1
        return self._preroll.packets_between(start, end)

    def ring_span(self) -> tuple[float, float] | None:
        if (reader := self._reader) is not None:
            return reader.ring_span()
        return None if self._preroll is None else self._preroll.ring_span()

    def first_keyframe_at(self) -> float | None:
        return None if (reader := self._reader) is None else reader.first_keyframe_at()

    def keyframe_image(self, at: float | None = None) -> np.ndarray | None:
        return None if (reader := self._reader) is None else reader.keyframe_image(at)

    @property
    def frames_in(self) -> int:
        reader = self._reader
        return self._closed_counts[0] + (reader.frames_in if reader is not None else 0)

    @property
    def frames_decoded(self) -> int:
        reader = self._reader
        return self._closed_counts[1] + (reader.frames_decoded if reader is not None else 0)

    @property
    def decode_seconds(self) -> float:
        reader = self._reader
        return self._closed_counts[2] + (reader.decode_seconds if reader is not None else 0.0)
