"""The benchmark's camera stream: the shared street clip re-encoded the way an IP camera sends it.

The shared clip is ~15 fps with a variable frame rate; a compound's cameras send a constant
25 fps H.264 stream with a fixed keyframe interval (GOP). Decode cost depends on both, so the
benchmark builds its stream at run time (footage is never committed) and caches it by its
parameters. The clip is cut to a whole number of GOPs so that looping on the RTSP server does not
put two keyframes close together at every loop boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

import hashlib
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CameraProfile:
    """How the camera encodes: these are the common factory defaults of 720p IP cameras."""

    width: int = 1280
    height: int = 720
    fps: int = 25
    gop: int = 50  # keyframe every 2 s: the usual default ("I-frame interval = 2 x fps")
    bitrate: int = 2_000_000  # 2 Mbit/s, a typical 720p main-stream setting
    profile: str = "main"

    def key(self, source: Path) -> str:
        stat = source.stat()
        text = (f"{source.name}:{stat.st_size}:{self.width}x{self.height}@{self.fps}:gop{self.gop}:{self.bitrate}:"
                f"{self.profile}")
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sharpeyes" / "bench"


def camera_clip(source: Path, profile: CameraProfile, cache_dir: Path | None = None) -> Path:
    """The source re-encoded to ``profile``, built once and reused (the encode takes ~30 s)."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / (f"{source.stem}_{profile.height}p{profile.fps}_gop{profile.gop}_"
                          f"{profile.key(source)}.mp4")
    return _built_once(target, lambda partial: encode_camera_clip(source, partial, profile))


def _built_once(target: Path, build: Callable[[Path], object]) -> Path:
    """TARGET as cached, or built by BUILD into a partial file first and then renamed."""
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.mp4")
    build(partial)
    partial.replace(target)  # atomic: a killed build never leaves a truncated clip in the cache
    return target


def _source_frames(source: Path) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds, frame) for every decoded frame of the source, in presentation order."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None or stream.time_base is None:
                continue
            yield float(frame.pts * stream.time_base), frame


def encode_camera_clip(source: Path, target: Path, profile: CameraProfile) -> None:
    """Resample the source to a constant frame rate (repeating frames) and encode it with libx264."""
    import av
    from av.video.frame import PictureType

    with av.open(str(source)) as probe:
        seconds = float(probe.duration or 0) / 1_000_000
    if seconds <= 0:
        raise ValueError(f"{source}: cannot read its duration")
    gops = max(2, int(seconds * profile.fps) // profile.gop)
    # Whole GOPs: across the server's loop the keyframes keep their rhythm (a file opening with
    # an extra keyframe at every loop would cost every camera a sample per loop). Cameras get
    # different keyframe phases from the moments they connect, as real ones are out of step.
    total = gops * profile.gop
    source_frames = _source_frames(source)
    current = next(source_frames, None)
    if current is None:
        raise ValueError(f"{source}: no video frames")
    upcoming = next(source_frames, None)
    t0 = current[0]
    with av.open(str(target), mode="w", format="mp4") as out:
        # Cameras send no B-frames and never insert scene-cut keyframes: the GOP is fixed.
        options = {
            "preset": "veryfast",
            "profile": profile.profile,
            "x264-params": f"keyint={profile.gop}:min-keyint={profile.gop}:scenecut=0:bframes=0",
        }
        stream = out.add_stream("libx264", rate=profile.fps, options=options)
        stream.width, stream.height = profile.width, profile.height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = profile.bitrate
        stream.codec_context.gop_size = profile.gop
        for i in range(total):
            t = t0 + i / profile.fps
            # Hold the newest source frame until the next one is due: constant rate from variable.
            while upcoming is not None and upcoming[0] <= t:
                current, upcoming = upcoming, next(source_frames, None)
            frame = current[1].reformat(width=profile.width, height=profile.height, format="yuv420p")
            frame.pts = i
            # The source's own I-frames would otherwise be forced through as extra keyframes.
            frame.pict_type = PictureType.NONE
            frame.time_base = Fraction(1, profile.fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def clip_seconds(clip: Path) -> float:
    """How long CLIP's video lasts."""
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return (container.duration or 0) / 1_000_000


def looped_clip(clip: Path, seconds: float, cache_dir: Path | None = None, start_s: float = 0.0) -> Path:
    """CLIP repeated end to end until it lasts at least SECONDS, without re-encoding; cached.

    For servers that play a file once (GStreamer's, sharpeyes.gst_rtsp_server): the loop is in the
    file, so no code runs in their streaming threads. Timestamps keep rising across each repeat, as
    a camera's do, and the clip's whole GOPs (encode_camera_clip) keep the keyframe rhythm.
    ``start_s``: the copy starts at CLIP's first keyframe at or after that second (its phase), so
    cameras streaming one clip need not show the same moment together.
    """
    cache_dir = cache_dir or default_cache_dir()
    stat = clip.stat()
    key = hashlib.sha256(f"{clip.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    phase = f"_at{start_s:g}s" if start_s else ""
    target = cache_dir / f"{clip.stem}_loop{int(seconds)}s{phase}_{key}.mp4"
    return _built_once(target, lambda partial: write_looped(clip, partial, seconds, start_s))


def write_looped(clip: Path, target: Path, seconds: float, start_s: float = 0.0) -> int:
    """Write CLIP's video packets to TARGET, repeated until SECONDS are covered, starting at the first
    keyframe at or after ``start_s`` (timestamps from zero); the repeat count."""
    import av

    with av.open(str(clip)) as source:
        stream = source.streams.video[0]
        if stream.time_base is None or not stream.average_rate:
            raise ValueError(f"{clip}: no time base or frame rate to loop by")
        time_base = stream.time_base
        packets = [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in source.demux(stream)
                   if p.dts is not None and p.pts is not None and p.size]
        if not packets:
            raise ValueError(f"{clip}: no video packets")
        frame_ticks = round(1 / (stream.average_rate * time_base))
        # One repeat spans every frame once: the next repeat's first frame is one frame after the last.
        first_pts = min(p[1] for p in packets)
        period = max(p[1] for p in packets) - first_pts + frame_ticks
        start = next((i for i, p in enumerate(packets) if p[3] and float((p[1] - first_pts) * time_base) >= start_s), 0)
        shift = packets[start][1] - first_pts
        # The phase's first repeat is its tail of the clip; whole repeats follow.
        repeats = max(1, math.ceil((seconds + float(shift * time_base)) / float(period * time_base)))
        with av.open(str(target), mode="w", format="mp4") as out:
            out_stream = out.add_stream_from_template(stream)
            for k in range(repeats):
                for data, pts, dts, keyframe in packets[start:] if k == 0 else packets:
                    packet = av.Packet(data)
                    packet.pts, packet.dts = pts + k * period - shift, dts + k * period - shift
                    packet.time_base = time_base
                    packet.is_keyframe = keyframe
                    packet.stream = out_stream
                    out.mux(packet)
    return repeats
