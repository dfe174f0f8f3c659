"""One RTSP camera: a reader thread that demuxes with FFmpeg (PyAV) over TCP, keeps a ring of
encoded packets for evidence clips, decodes only what the camera's profile needs (every frame, or
keyframes only for slow hazards such as fire lanes), and always keeps just the newest frame.

Failures are classified (refused, timeout, 401, stream ended, codec not supported) and the
camera reconnects with capped exponential backoff and jitter. The stall watchdog is the time since
the last decoded frame, never the return value of a single read."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from broker.redact import redact
from edge.backoff import Backoff

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

# none: demux only, into the packet ring (the evidence stream beside a detection sub-stream); a
# keyframe of the ring is decoded when evidence asks for one (``keyframe_image``).
DecodeMode = Literal["all", "keyframes", "none"]
_KEYFRAME_SLACK_S = 3.0
# 1080p at 30 fps: what one core decodes with room to spare.
ONE_THREAD_PIXELS_PER_S = 1920 * 1080 * 30


def _pixels_per_second(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or 25
    return float(stream.codec_context.width * stream.codec_context.height * rate)


class Frame:
    """A decoded frame, converted to a BGR array only when first asked for (``image``): a worker
    samples a lift camera's 5 fps stream at 2 fps, and the conversions of frames nobody looks at
    cost as much as their decoding."""

    __slots__ = ("_converting", "_decoded", "_image", "monotonic", "number", "wall")

    def __init__(self, image: np.ndarray | None, number: int, monotonic: float, wall: datetime,
                 decoded: Any = None) -> None:
        if image is None and decoded is None:
            raise ValueError("a frame needs its image or its decoded picture")
        self._image = image
        self._decoded = decoded  # av.VideoFrame until converted
        self._converting = threading.Lock()
        self.number = number
        self.monotonic = monotonic  # when its packet arrived: the camera's moment, not when a busy box got to decode it
        self.wall = wall

    @property
    def image(self) -> np.ndarray:
        image = self._image
        if image is not None:
            return image
        # One conversion at a time: PyAV's frame keeps one reformatter, which two threads at once crash.
        with self._converting:
            if self._image is None:
                self._image = self._decoded.to_ndarray(format="bgr24")
                self._decoded = None
            return self._image


@dataclass(frozen=True, slots=True)
class HealthChange:
    camera: str
    state: str  # online | offline
    since: datetime
    cause: str | None


@dataclass(frozen=True, slots=True)
class BufferedPacket:
    monotonic: float
    packet: Any  # av.Packet, kept encoded: clips are cut without re-encoding
    keyframe: bool


def classify_failure(exc: BaseException) -> str:
    """A short, operator-readable cause for a failed open or read. It travels to central as the
    camera's health cause, so it never holds the URL's password (PyAV puts the URL in its errors)."""
    import av

    text = redact(str(exc))
    if isinstance(exc, av.error.HTTPUnauthorizedError) or "401" in text:
        return "camera refused the credentials (401 Unauthorized); check the user and password"
    if isinstance(exc, av.error.HTTPNotFoundError) or "404" in text:
        return "stream not found (404); check the path in the URL"
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in text:
        return "connection refused; is the camera or its RTSP service up?"
    if isinstance(exc, (TimeoutError, av.error.ExitError)) or "timed out" in text.lower():
        return "timed out waiting for the camera"
    if isinstance(exc, (av.error.DecoderNotFoundError, UnsupportedCodec)):
        return f"codec not supported: {text}"
    if isinstance(exc, av.error.EOFError):
        return "stream ended"
    return f"{type(exc).__name__}: {text}"


class UnsupportedCodec(RuntimeError):
    pass


def open_stream(url: str, io_timeout_s: float = 5.0) -> av.container.InputContainer:
    """Open a camera's stream for demuxing, with FFmpeg's own socket timeout on connect and on every
    read (an RTSP camera is read over TCP).

    Not PyAV's ``timeout=``: its interrupt callback takes the GIL on every poll of FFmpeg's I/O, so
    each camera thread fights for the interpreter dozens of times per packet. With 128 streams
    (64 cameras, main and sub-stream) that made the readers' CPU per packet 2.5 times as much and
    their context switches 17 times as many (``sharpeyes bench cameras --readers``: docs/benchmarks.md)."""
    import av

    micros = str(round(io_timeout_s * 1_000_000))
    if url.startswith(("rtsp://", "rtsps://")):
        # fpsprobesize 0: without it FFmpeg reads frames for a frame rate that the stream's own
        # timing already gives, 3.4 s more at a 5 fps camera before the first packet (5.6 s in
        # all). An on-demand evidence stream opens as a lift's e-bike is first seen.
        options = {"rtsp_transport": "tcp", "timeout": micros, "fpsprobesize": "0"}
    elif "://" in url and not url.startswith("file:"):
        options = {"rw_timeout": micros}
    else:
        options = {}
    started = time.monotonic()
    try:
        return av.open(url, options=options)
    except av.error.InvalidDataError as exc:
        # FFmpeg's RTSP demuxer reports a server that accepted the connection and then said nothing
        # as unreadable data; the operator needs to know it was silence.
        if time.monotonic() - started >= io_timeout_s:
            raise TimeoutError(f"no answer within {io_timeout_s:g} s") from exc
        raise


class CameraReader:
    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        decode: DecodeMode = "all",
        io_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
        ring_seconds: float = 15.0,
        hold_max_s: float = 30.0,
        backoff: Backoff | None = None,
        on_health: Callable[[HealthChange], None] | None = None,
        start_delay_s: float = 0.0,
    ) -> None:
        self.camera_id = camera_id
        self.start_delay_s = start_delay_s
        self.url = url
        self.decode = decode
        self.io_timeout_s = io_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.ring_seconds = ring_seconds
        self.hold_max_s = hold_max_s
        # Clips not cut yet: key -> the earliest second each needs (``hold``).
        self._holds: dict[object, float] = {}
        self.backoff = backoff or Backoff(initial_s=0.5, cap_s=30.0)
        self._on_health = on_health
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ring: deque[BufferedPacket] = deque()
        self._ring_lock = threading.Lock()
        self._stream_template: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)
        self._number = 0
        self.state = "offline"
        self.cause: str | None = "not started"
        self.frames_in = 0  # packets received
        self.frames_decoded = 0
        self.decode_seconds = 0.0
        self.reconnects = 0
        self.last_frame_monotonic: float | None = None
        # Decode mode none: evidence threads decode a keyframe with the stream's decoder, which the
        # reader must not close under them; the last one decoded is kept for the next ask.
        self._decode_lock = threading.Lock()
        self._decoder: Any = None
        self._keyframe: tuple[float, np.ndarray] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- consumers -----------------------------------------------------------------------------
    def next_frame(self, after: int, timeout: float) -> Frame | None:
        """The newest frame numbered above ``after``; older frames were dropped on purpose."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set():
                if self._latest is not None and self._latest.number > after:
                    return self._latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        return None

    def newest(self) -> Frame | None:
        with self._cond:
            return self._latest

    def seconds_since_frame(self, now: float | None = None) -> float | None:
        if self.last_frame_monotonic is None:
            return None
        return (now if now is not None else time.monotonic()) - self.last_frame_monotonic

    def packets_between(self, start: float, end: float) -> tuple[Any, list[Any]]:
        """Encoded packets from the last keyframe at or before ``start`` up to ``end`` (monotonic)."""
        with self._ring_lock:
            ring = list(self._ring)
            template = self._stream_template
        first = 0
        for i, item in enumerate(ring):
            if item.keyframe and item.monotonic <= start:
                first = i
        while first < len(ring) and not ring[first].keyframe:
            first += 1
        return template, [item.packet for item in ring[first:] if item.monotonic <= end]

    def hold(self, key: object, since: float) -> None:
        """Keep the ring's packets from ``since`` (monotonic) on until ``release(key)``, at most
        ``hold_max_s`` beyond the ring's own length. On a loaded box a clip is cut long after its
        alarm (the worker waits its turn for the detector), and by then a ring of
        clip_pre_s + clip_post_s + 3 s had already dropped the alarm's seconds."""
        with self._ring_lock:
            self._holds[key] = since

    def release(self, key: object) -> None:
        with self._ring_lock:
            self._holds.pop(key, None)

    def ring_span(self) -> tuple[float, float] | None:
        """(oldest, newest) arrival time of the packets in the ring; None when it is empty."""
        with self._ring_lock:
            return (self._ring[0].monotonic, self._ring[-1].monotonic) if self._ring else None

    def first_keyframe_at(self) -> float | None:
        """Arrival time of the ring's oldest keyframe, where a clip from the ring can start at the earliest."""
        with self._ring_lock:
            return next((item.monotonic for item in self._ring if item.keyframe), None)

    # -- reader thread -------------------------------------------------------------------------
    def _set_state(self, state: str, cause: str | None) -> None:
        self.cause = cause
        if state == self.state:
            return
        self.state = state
        change = HealthChange(self.camera_id, state, datetime.now(UTC), cause)
        if state == "online":
            log.info("camera %s online (%s)", self.camera_id, redact(self.url))
        else:
            log.warning("camera %s offline: %s", self.camera_id, cause)
        if self._on_health is not None:
            self._on_health(change)

    def _run(self) -> None:
        # Many cameras opening in the same instant all hit their open timeout together.
        self._stop.wait(self.start_delay_s)
        while not self._stop.is_set():
            try:
                cause = self._read_stream()
            except Exception as exc:  # any failure of one camera stays with that camera
                cause = classify_failure(exc)
            if self._stop.is_set():
                break
            self.reconnects += 1
            self._set_state("offline", cause)
            self._stop.wait(self.backoff.next_delay())

    def _read_stream(self) -> str:
        container = open_stream(self.url, self.io_timeout_s)
        try:
            if not container.streams.video:
                raise UnsupportedCodec("the stream has no video track")
            stream = container.streams.video[0]
            if self.decode in ("keyframes", "none"):
                # Fire lanes change over minutes: decoding keyframes only cuts decode CPU ~5x.
                stream.codec_context.skip_frame = "NONKEY"
            # One decoding thread per stream unless the stream is too large for one core: a box
            # decodes dozens of cameras at once, and decoder threads only add hand-overs and frame
            # buffers there (a 576p sub-stream took 15 % less CPU per frame with one thread).
            stream.codec_context.thread_count = 1 if _pixels_per_second(stream) <= ONE_THREAD_PIXELS_PER_S else 0
            self._adopt(stream)
            with self._decode_lock:
                self._decoder, self._keyframe = stream.codec_context, None
            return self._demux(container, stream)
        finally:
            with self._decode_lock:
                self._decoder = None
                container.close()

    def _adopt(self, stream: av.VideoStream) -> None:
        """A new connection: its packets start a new ring, clipped with a copy of its codec
        parameters that stays valid after this connection's container is closed."""
        from edge.clip import detached_template

        template = detached_template(stream)
        with self._ring_lock:
            self._ring.clear()
            self._stream_template = template

    def _demux(self, container: av.container.InputContainer, stream: av.VideoStream) -> str:
        last_frame_at = time.monotonic()
        for packet in container.demux(stream):
            if self._stop.is_set():
                return "stopped"
            now = time.monotonic()
            if packet.dts is None:  # flush packet at end of stream
                continue
            self.frames_in += 1
            self._remember(now, packet)
            if self.decode == "none":
                if packet.is_keyframe:
                    last_frame_at = self._keyframe_arrived(now)
                elif now - last_frame_at > self.stall_timeout_s:
                    return f"no keyframe for {now - last_frame_at:.1f} s (stalled)"
                continue
            if self.decode == "keyframes" and not packet.is_keyframe:
                if now - last_frame_at > self.stall_timeout_s:
                    return f"no decodable frame for {now - last_frame_at:.1f} s (stalled)"
                continue
            started = time.perf_counter()
            frames = packet.decode()
            for av_frame in frames:
                self.decode_seconds += time.perf_counter() - started
                self.frames_decoded += 1
                last_frame_at = time.monotonic()
                # Dwell times, cadence and clip bounds (the ring is keyed by arrival) all read the
                # frame's arrival; the wall clock is shifted back by the decode delay to match.
                self._publish_frame(av_frame, now, last_frame_at)
                started = time.perf_counter()
            if now - last_frame_at > self.stall_timeout_s:
                return f"no decodable frame for {now - last_frame_at:.1f} s (stalled)"
        return "stream ended"

    def _keyframe_arrived(self, now: float) -> float:
        self.last_frame_monotonic = now
        if self.state != "online":
            self._set_state("online", None)
            self.backoff.reset()
        return now

    def keyframe_image(self, at: float | None = None) -> np.ndarray | None:
        """The keyframe of the packet ring nearest before ``at`` (monotonic; the newest without it),
        decoded (BGR); None when the ring holds none or it does not decode. Decoded once however
        many ask for it."""
        with self._ring_lock:
            keyframes = [item for item in self._ring if item.keyframe]
        if not keyframes:
            return None
        before = [item for item in keyframes if at is None or item.monotonic <= at]
        chosen = before[-1] if before else keyframes[0]
        with self._decode_lock:
            if self._keyframe is not None and self._keyframe[0] == chosen.monotonic:
                return self._keyframe[1]
            if self._decoder is None:
                return None
            started = time.perf_counter()
            try:
                images = [f.to_ndarray(format="bgr24") for f in self._decoder.decode(chosen.packet)]
            except Exception as exc:  # noqa: BLE001 - the update goes without the picture
                log.warning("camera %s: keyframe for evidence did not decode: %s", self.camera_id, exc)
                return None
            self.decode_seconds += time.perf_counter() - started
            if not images:
                return None
            self.frames_decoded += 1
            self._keyframe = (chosen.monotonic, images[-1])
            return images[-1]

    def _remember(self, now: float, packet: av.Packet) -> None:
        with self._ring_lock:
            self._ring.append(BufferedPacket(now, packet, bool(packet.is_keyframe)))
            horizon = now - self.ring_seconds
            if self._holds:
                # A keyframe interval of slack: the clip starts at the keyframe before ``since``.
                held = min(self._holds.values()) - _KEYFRAME_SLACK_S
                horizon = max(min(horizon, held), now - self.ring_seconds - self.hold_max_s)
            while self._ring and self._ring[0].monotonic < horizon:
                self._ring.popleft()

    def _publish_frame(self, av_frame: Any, arrived: float, decoded: float) -> None:
        self._number += 1
        self.last_frame_monotonic = decoded
        wall = datetime.now(UTC) - timedelta(seconds=max(0.0, time.monotonic() - arrived))
        frame = Frame(None, self._number, arrived, wall, decoded=av_frame)
        with self._cond:
            self._latest = frame
            self._cond.notify_all()
        if self.state != "online":
            self._set_state("online", None)
            self.backoff.reset()
