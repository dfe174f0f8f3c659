"""Cameras that fail the way real cameras fail: a server that dies and returns, a stream that
stalls, and a lens that gets covered. Real RTSP server, real broker, real edge node."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from edge.node import EdgeNode
from sharpeyes.rtsp_server import FootageServer
from tests.edge_live.support import Recorder, one_camera_site
from tests.support import wait_until


@pytest.fixture
def street_server(shared_media: Path, tmp_path: Path):
    server = FootageServer({"street.mp4": shared_media / "street_parked_cars_720p.mp4"}, workdir=tmp_path / "rtsp")
    server.start()
    yield server
    server.close()


def _run_node(site, tmp_path: Path) -> EdgeNode:
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    return node


@pytest.mark.timeout(120)
def test_camera_server_dies_and_returns(fresh_mosquitto, street_server, tmp_path):
    site = one_camera_site(fresh_mosquitto.port, street_server.url("street.mp4"), offline_s=4, decode="all")
    recorder = Recorder(fresh_mosquitto.port)
    node = _run_node(site, tmp_path)
    try:
        wait_until(lambda: "online" in recorder.health(), 30, what="camera online")
        # A first start slower than offline_s (a loaded box, right after other tests) rightly
        # raises an episode and ends it once frames come: any episode so far must be closed.
        before = wait_until(lambda: (n := len(recorder.events("camera_offline"))) % 2 == 0 and [n], 10,
                            what="every offline episode before the kill to be closed")[0]
        street_server.kill()
        wait_until(lambda: "offline" in recorder.health()[-1:], 15, what="health offline after the server died")
        start = wait_until(lambda: recorder.events("camera_offline")[before:], 15, what="camera_offline start")[0]
        assert start["phase"] == "start" and start["camera"] == "cam" and start["zone"] is None

        street_server.start()
        wait_until(lambda: len(recorder.events("camera_offline")) == before + 2, 45, what="camera_offline end")
        end = recorder.events("camera_offline")[before + 1]
        assert end["phase"] == "end" and end["incident_key"] == start["incident_key"]
        wait_until(lambda: recorder.health()[-1] == "online", 10, what="health online again")
        frames = node.workers[0].reader.frames_decoded
        wait_until(lambda: node.workers[0].reader.frames_decoded > frames + 5, 10, what="frames resuming")
    finally:
        node.stop()
        recorder.close()


@pytest.mark.timeout(90)
def test_stalled_stream_is_caught_by_the_watchdog(fresh_mosquitto, street_server, tmp_path):
    site = one_camera_site(fresh_mosquitto.port, street_server.url("street.mp4"), offline_s=60, decode="all")
    recorder = Recorder(fresh_mosquitto.port)
    node = _run_node(site, tmp_path)
    try:
        wait_until(lambda: "online" in recorder.health(), 30, what="camera online")
        street_server.pause()  # SIGSTOP: the TCP connection stays open, no bytes flow
        import time

        paused_at = time.monotonic()
        wait_until(lambda: "offline" in recorder.health(), 20, what="watchdog declaring the camera offline")
        assert time.monotonic() - paused_at < 15  # read timeout 5 s + stall timeout 10 s at most
        street_server.resume()
        wait_until(lambda: recorder.health()[-1] == "online", 40, what="camera back online after the stall")
    finally:
        street_server.resume()
        node.stop()
        recorder.close()


def _covered_lens_clip(source: Path, target: Path, *, clear_s: float = 8, covered_s: float = 14) -> None:
    """The street clip for ``clear_s``, then a hand over the lens (near-black frames) for ``covered_s``."""
    fps = 10
    with av.open(str(source)) as src:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(int(clear_s * fps)), src.decode(video=0), strict=False)]
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1] // 2, frames[0].shape[0] // 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        rng = np.random.default_rng(0)
        covered = [np.clip(rng.normal(6, 1.5, frames[0].shape), 0, 255).astype(np.uint8) for _ in range(3)]
        for image in frames + [covered[i % 3] for i in range(int(covered_s * fps))]:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(stream.width, stream.height)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.timeout(120)
def test_covered_lens_raises_camera_tampered(fresh_mosquitto, shared_media, tmp_path):
    clip = tmp_path / "covered.mp4"
    # 14 s of clear view: the reference is the median of five views 2 s apart after 3 s settling.
    _covered_lens_clip(shared_media / "street_parked_cars_720p.mp4", clip, clear_s=14)
    with FootageServer({"covered.mp4": clip}, workdir=tmp_path / "rtsp") as server:
        site = one_camera_site(
            fresh_mosquitto.port, server.url("covered.mp4"), decode="all", tamper={"dwell_s": 3, "clear_s": 3}
        )
        recorder = Recorder(fresh_mosquitto.port)
        node = _run_node(site, tmp_path)
        try:
            start = wait_until(lambda: recorder.events("camera_tampered"), 40, what="camera_tampered start")[0]
            assert start["phase"] == "start"
            assert start["evidence"], "a tamper event carries the frame as evidence"
            assert "tampered" in recorder.health()
            # The server may be seconds into its loop when the edge joins: the reference's five views
            # can span two clear stretches of the loop.
            wait_until((tmp_path / "var" / "reference" / "cam.png").is_file, 40, what="reference view captured and kept")
            # The clip loops: the view comes back and the episode ends.
            wait_until(lambda: len(recorder.events("camera_tampered")) >= 2, 40, what="camera_tampered end")
            assert recorder.events("camera_tampered")[1]["phase"] == "end"
        finally:
            node.stop()
            recorder.close()
