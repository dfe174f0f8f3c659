"""The bench's cheap stand-in cameras: GStreamer's RTSP server serves a real stream that the edge's
own reader (edge/camera.py) decodes, and keeps serving it across the file's loop, as a camera does."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest

from edge.camera import CameraReader
from sharpeyes.bench.media import CameraProfile, encode_camera_clip
from sharpeyes.gst_rtsp_server import GstFootageServer, gst_unavailable

pytestmark = pytest.mark.skipif(gst_unavailable() is not None, reason=f"{gst_unavailable()}")


@pytest.fixture(scope="module")
def short_clip(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Two GOPs of a 5 fps sub-stream: 4 s, so the test sees the server loop the file twice.
    full = tmp_path_factory.mktemp("gst") / "sub.mp4"
    encode_camera_clip(shared_media / "parking_lot_traffic.mp4", full,
                       CameraProfile(width=320, height=180, fps=5, gop=10, bitrate=200_000))
    short = full.with_name("short.mp4")
    with av.open(str(full)) as src, av.open(str(short), "w") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        packets = [p for p in src.demux(stream) if p.dts is not None][:20]
        for packet in packets:
            packet.stream = copy
            out.mux(packet)
    return short


def test_the_edge_reader_decodes_a_looping_gst_stream(short_clip: Path, tmp_path: Path) -> None:
    with GstFootageServer({"lift.mp4": short_clip}, workdir=tmp_path / "rtsp") as server:
        reader = CameraReader("cam-1", server.url("lift.mp4"), decode="all")
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while reader.frames_decoded < 50 and time.monotonic() < deadline:
                time.sleep(0.2)
            frame = reader.newest()
        finally:
            reader.stop()
    # 50 frames at 5 fps is 10 s: the 4 s file looped at least twice without the session ending.
    assert reader.frames_decoded >= 50, server.log_tail()
    assert reader.reconnects == 0
    assert frame is not None and frame.image.shape == (180, 320, 3)
    assert frame.image.std() > 5  # a picture, not a grey error frame


def test_each_session_starts_at_a_keyframe_and_rtp_time_keeps_rising_across_the_loop(short_clip: Path,
                                                                                     tmp_path: Path) -> None:
    with GstFootageServer({"a.mp4": short_clip}, workdir=tmp_path / "rtsp") as server, \
            av.open(server.url("a.mp4"), options={"rtsp_transport": "tcp"}, timeout=5) as container:
        stream = container.streams.video[0]
        packets = []
        for packet in container.demux(stream):
            if packet.pts is not None:
                packets.append((packet.pts, packet.is_keyframe))
            if len(packets) >= 45:  # past two loops of 20 frames
                break
    assert packets[0][1], "a session must start at a keyframe"
    times = [pts for pts, _ in packets]
    # One packet per frame, strictly rising: the loop's first frame does not reuse the last's time.
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), times
    keys = [i for i, (_, key) in enumerate(packets) if key]
    assert all(b - a == 10 for a, b in zip(keys, keys[1:], strict=False)), keys  # the GOP's rhythm survives the loop
