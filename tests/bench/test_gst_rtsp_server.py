"""The benchmark's stand-in cameras served by GStreamer's RTSP server (sharpeyes/gst_rtsp_server.py).

What `bench edge` needs of them: every contestant in turn (edge, floor, peer) opens all its
cameras after the previous one's sessions have ended, and a session's stream keeps a camera's
rhythm across the footage's loop. A real GStreamer server, real H.264 from libx264, read over
RTSP by FFmpeg (PyAV) as the edge reads its cameras.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from sharpeyes.bench.media import looped_clip, write_looped
from sharpeyes.chaos.parts import wait_for
from sharpeyes.gst_rtsp_server import GstFootageServer, gst_unavailable

FPS, GOP, CLIP_FRAMES = 25, 10, 40  # a 1.6 s clip of 4 whole GOPs


def _clip(path: Path) -> Path:
    """A camera-like clip: constant 25 fps, fixed GOP, no B-frames, moving content."""
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={
            "preset": "ultrafast", "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(CLIP_FRAMES):
            picture = np.full((240, 320, 3), 40, np.uint8)
            picture[:, (i * 7) % 300 : (i * 7) % 300 + 20] = 220
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _packets(source: str, seconds: float | None = None, options: dict[str, str] | None = None) -> list[tuple[float, bool]]:
    """(pts in seconds, keyframe) of every video packet, for SECONDS of stream or the whole file."""
    out: list[tuple[float, bool]] = []
    with av.open(source, options=options, timeout=(10.0, 5.0)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            out.append((float(packet.pts * stream.time_base), packet.is_keyframe))
            if seconds is not None and out[-1][0] - out[0][0] >= seconds:
                break
    return out


def _rhythm_holds(packets: list[tuple[float, bool]]) -> None:
    times = [t for t, _ in packets]
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), "timestamps went back or stood still"
    gaps = np.diff(times)
    assert np.allclose(gaps, 1 / FPS, atol=0.002), f"frame gaps {sorted(set(np.round(gaps, 3)))}"
    keyframes = [t for t, key in packets if key]
    assert np.allclose(np.diff(keyframes), GOP / FPS, atol=0.002), f"keyframes at {keyframes}"


def test_a_looped_clip_keeps_the_cameras_rhythm_across_every_repeat(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.mp4")
    repeats = write_looped(clip, tmp_path / "looped.mp4", seconds=5.0)
    assert repeats == 4  # 1.6 s each, until 5 s are covered
    packets = _packets(str(tmp_path / "looped.mp4"))
    assert len(packets) == 4 * CLIP_FRAMES
    _rhythm_holds(packets)
    # Cached by the clip: a second ask builds nothing new.
    first = looped_clip(clip, 5.0, cache_dir=tmp_path / "cache")
    assert looped_clip(clip, 5.0, cache_dir=tmp_path / "cache") == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))



def test_a_looped_clip_can_start_at_a_phase_and_keeps_the_rhythm(tmp_path: Path) -> None:
    """Cameras on one clip start it at different moments (`bench edge --phases`), as independent cameras would."""
    clip = _clip(tmp_path / "clip.mp4")
    with av.open(str(clip)) as source:
        stream = source.streams.video[0]
        originals = [(float(p.pts * stream.time_base), bytes(p)) for p in source.demux(stream) if p.pts is not None]
    # 0.5 s in: the first keyframe at or after it is the third GOP's, at 0.8 s.
    repeats = write_looped(clip, tmp_path / "phased.mp4", seconds=5.0, start_s=0.5)
    with av.open(str(tmp_path / "phased.mp4")) as phased:
        stream = phased.streams.video[0]
        first = next(p for p in phased.demux(stream) if p.pts is not None)
        assert first.is_keyframe and first.pts == 0
        assert bytes(first) == next(data for t, data in originals if abs(t - 0.8) < 1e-6), "the clip's 0.8 s keyframe comes first"
    packets = _packets(str(tmp_path / "phased.mp4"))
    _rhythm_holds(packets)
    assert packets[-1][0] >= 5.0 - 1 / FPS and repeats == 4  # the 0.8 s tail, then whole repeats until 5 s
    # Each phase is its own cached copy.
    assert looped_clip(clip, 5.0, cache_dir=tmp_path / "cache", start_s=0.5) != looped_clip(clip, 5.0, cache_dir=tmp_path / "cache")

@pytest.mark.timeout(180)
def test_three_contestants_in_turn_all_open_every_camera_and_the_server_frees_each_session(tmp_path: Path) -> None:
    why = gst_unavailable()
    assert why is None, why  # scripts/ensure-system.sh installs it; `make test` runs that first
    clip = _clip(tmp_path / "clip.mp4")
    cameras = 8
    server = GstFootageServer({f"cam-{i}.mp4": clip for i in range(cameras)}, workdir=tmp_path / "gst", loop_s=30.0)
    server.start()
    try:
        assert server.pid is not None
        idle_fds = _open_fds(server.pid)
        for contestant in ("edge", "floor", "peer"):
            results: dict[int, list[tuple[float, bool]] | str] = {}

            def read(i: int, results: dict[int, list[tuple[float, bool]] | str] = results) -> None:
                try:
                    # 2.5 s crosses the footage's loop (1.6 s) in every session.
                    results[i] = _packets(server.url(f"cam-{i}.mp4"), 2.5, options={"rtsp_transport": "tcp"})
                except av.FFmpegError as exc:
                    results[i] = f"{type(exc).__name__}: {exc}"

            readers = [threading.Thread(target=read, args=(i,)) for i in range(cameras)]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(60)
            failed = {i: r for i, r in results.items() if isinstance(r, str)}
            assert not failed and len(results) == cameras, f"{contestant}: {failed or 'a reader hung'}"
            for packets in results.values():
                assert isinstance(packets, list)
                _rhythm_holds(packets)
            # Every session's pipeline, sockets and file go once its reader has gone.
            wait_for(lambda: _open_fds(server.pid or 0) <= idle_fds, 20, f"the server to free {contestant}'s sessions")
    finally:
        server.stop()
