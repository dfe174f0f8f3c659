"""A lift camera with a detection sub-stream: the main stream opens only when an e-bike is seen, and
the alarm's clip, whose 4 s before the alarm the main stream cannot hold yet, is cut from the
sub-stream's packet ring. Both streams are the bench's lift footage (an empty room standing in for
the lift for 6 s, then the e-scooter) on a real RTSP server, the real detector on the sub-stream."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from edge.node import EdgeNode
from sharpeyes.bench.lift_footage import lift_source
from sharpeyes.bench.media import CameraProfile, encode_camera_clip
from sharpeyes.rtsp_server import FootageServer
from tests.edge_live.support import Recorder, one_camera_site
from tests.support import wait_until

LIFT_CAMERA = Path(__file__).resolve().parents[2] / "configs" / "cameras" / "elevator.yaml"
MAIN = CameraProfile(width=816, height=1150, fps=5, gop=10)
SUB = CameraProfile(width=408, height=576, fps=5, gop=10, bitrate=384_000)


@pytest.fixture(scope="module")
def lift_streams(shared_media: Path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lift")
    loop = lift_source(shared_media, workdir)
    encode_camera_clip(loop, workdir / "lift_main.mp4", MAIN)
    encode_camera_clip(loop, workdir / "lift_sub.mp4", SUB)
    with FootageServer({"lift_main.mp4": workdir / "lift_main.mp4", "lift_sub.mp4": workdir / "lift_sub.mp4"},
                       workdir=workdir / "rtsp") as server:
        yield server


@pytest.mark.timeout(150)
def test_a_lift_opens_its_main_stream_for_the_ebike_and_cuts_the_clip_from_the_sub_stream(
        fresh_mosquitto, lift_streams, tmp_path):
    zone = yaml.safe_load(LIFT_CAMERA.read_text(encoding="utf-8"))["zones"][0]
    site = one_camera_site(fresh_mosquitto.port, lift_streams.url("lift_main.mp4"),
                           detect_url=lift_streams.url("lift_sub.mp4"), detect_fps=2, zones=[zone],
                           clip_pre_s=4, clip_post_s=2, tamper={"enabled": False})
    camera = site.edges[0].cameras[0]
    assert camera.evidence_on_demand() and camera.preroll_from_detection_stream()
    recorder = Recorder(fresh_mosquitto.port)
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    try:
        worker = node.workers[0]
        _, follow_up = recorder.start_and_clip_update("ebike_indoor", 90)
        # Opened once, for the e-scooter: the empty lift's first 6 s never opened it, so the main
        # stream has at least 3 s (15 packets at 5 fps) fewer than the sub-stream.
        assert worker.evidence_reader.opens == 1
        assert worker.evidence_reader.frames_in < worker.reader.frames_in - 15
        assert worker.evidence_reader.preroll_clips == 1
        clip_ref, picture_ref = follow_up["evidence"]
        # The alarm's full-resolution picture still comes from the main stream, opened for it.
        assert picture_ref["content_type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(wait_until(lambda: recorder.blob(picture_ref["sha256"]), 10,
                                                        what="picture blob"), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (MAIN.height, MAIN.width, 3)
        path = tmp_path / "clip.mp4"
        path.write_bytes(wait_until(lambda: recorder.blob(clip_ref["sha256"]), 10, what="clip blob"))
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (SUB.width, SUB.height)  # the sub-stream's ring
            seconds = float(stream.duration * stream.time_base) if stream.duration else float(container.duration) / 1e6
        # The 4 s before the alarm and the 2 s after, though the main stream opened 2 s before it.
        assert seconds >= 5.8
    finally:
        node.stop()
        recorder.close()
