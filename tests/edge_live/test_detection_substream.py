"""A camera with a detection sub-stream, as NVRs use one: the edge detects on the 640x360 stream, the
alarm leaves at once with the pictures it detected on, and the 1280x720 main stream's picture of
that moment follows with the clip. Both streams are served by a real RTSP server; the sub-stream is
encoded from the shared street clip at test time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from broker.configbase import ConfigError
from broker.siteconfig import SiteConfig
from edge.node import EdgeNode
from sharpeyes.bench.media import CameraProfile, encode_camera_clip
from sharpeyes.rtsp_server import FootageServer
from tests.edge_live.support import Recorder, one_camera_site
from tests.support import wait_until

PARKED = {"id": "near-kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
          "dwell_s": 2, "clear_s": 30, "realarm_s": 600}


@pytest.fixture(scope="module")
def streams(shared_media: Path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("substream")
    sub = workdir / "street_sub.mp4"
    encode_camera_clip(shared_media / "street_parked_cars_720p.mp4", sub,
                       CameraProfile(width=640, height=360, fps=5, gop=10, bitrate=384_000))
    with FootageServer({"street.mp4": shared_media / "street_parked_cars_720p.mp4", "street_sub.mp4": sub},
                       workdir=workdir / "rtsp") as server:
        yield server


def _picture(recorder: Recorder, ref: dict) -> np.ndarray:
    data = wait_until(lambda: recorder.blob(ref["sha256"]), 10, what="evidence blob")
    assert hashlib.sha256(data).hexdigest() == ref["sha256"]
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.timeout(150)
def test_detection_on_the_sub_stream_and_full_resolution_evidence_after_the_alarm(fresh_mosquitto, streams, tmp_path):
    # The main stream open all the time (with a 2 s dwell, auto would open it for the parked cars
    # and cut the clip from the sub-stream: tests/edge_live/test_lift_preroll.py).
    site = one_camera_site(fresh_mosquitto.port, streams.url("street.mp4"), detect_url=streams.url("street_sub.mp4"),
                           detect_fps=1, decode="all", zones=[PARKED], clip_pre_s=2, clip_post_s=2,
                           evidence_stream="always")
    recorder = Recorder(fresh_mosquitto.port)
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    try:
        start, follow_up = recorder.start_and_clip_update("fire_lane_blocked", 90)
        worker = node.workers[0]
        detected_on = worker.reader.newest()
        assert detected_on is not None and detected_on.image.shape == (360, 640, 3)
        assert worker.evidence_reader is not worker.reader and worker.evidence_reader.decode == "none"
        # The alarm's pictures are the detection frame's (no full-resolution decode on its path).
        assert [e["content_type"] for e in start["evidence"]] == ["image/jpeg", "image/jpeg"]
        for ref in start["evidence"]:
            assert _picture(recorder, ref).shape == (360, 640, 3)
        clip_ref, picture_ref = follow_up["evidence"]
        assert picture_ref["content_type"] == "image/jpeg"
        assert _picture(recorder, picture_ref).shape == (720, 1280, 3)  # the main stream's keyframe
        clip = wait_until(lambda: recorder.blob(clip_ref["sha256"]), 10, what="clip blob")
        path = tmp_path / "clip.mp4"
        path.write_bytes(clip)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (1280, 720)  # cut from the main stream's packet ring
        # The main stream is demuxed, and only the keyframes evidence asked for were decoded.
        assert worker.evidence_reader.frames_in > 0
        assert 1 <= worker.evidence_reader.frames_decoded <= 3
        assert worker.decode_seconds > worker.reader.decode_seconds
    finally:
        node.stop()
        recorder.close()


def test_a_detect_url_that_is_no_stream_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="must start with rtsp://"):
        SiteConfig.model_validate({"site": "t", "edges": [{"id": "e1", "cameras": [
            {"id": "cam", "url": "rtsp://127.0.0.1/main", "detect_url": "http://127.0.0.1/sub"}]}]})
    site = one_camera_site(1883, "rtsp://127.0.0.1/main", detect_url="${SUB_STREAM_URL_THAT_IS_NOT_SET}")
    with pytest.raises(ConfigError, match="detect_url"):
        site.edges[0].check_environment("site.yaml")


def _samples(worker) -> int:
    return worker.samples


@pytest.mark.timeout(150)
def test_a_fire_lane_opens_its_main_stream_when_a_vehicle_stops_and_the_clip_keeps_its_seconds_before(
        fresh_mosquitto, streams, tmp_path):
    # dwell 9 s leaves the 2 s pre-roll plus 5 s to open the main stream: auto picks on demand.
    site = one_camera_site(fresh_mosquitto.port, streams.url("street.mp4"), detect_url=streams.url("street_sub.mp4"),
                           detect_fps=1, decode="all", zones=[{**PARKED, "dwell_s": 9}], clip_pre_s=2, clip_post_s=2)
    assert site.edges[0].cameras[0].evidence_on_demand()
    recorder = Recorder(fresh_mosquitto.port)
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    try:
        worker = node.workers[0]
        _, follow_up = recorder.start_and_clip_update("fire_lane_blocked", 90)
        assert worker.evidence_reader.opens == 1  # opened once, for the parked cars, and kept
        clip_ref, picture_ref = follow_up["evidence"]
        assert _picture(recorder, picture_ref).shape == (720, 1280, 3)
        path = tmp_path / "clip.mp4"
        path.write_bytes(wait_until(lambda: recorder.blob(clip_ref["sha256"]), 10, what="clip blob"))
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (1280, 720)
            seconds = float(stream.duration * stream.time_base) if stream.duration else float(container.duration) / 1e6
        # The 2 s before the alarm and the 2 s after: the stream opened while the dwell ran, not at the alarm.
        assert seconds >= 3.9
    finally:
        node.stop()
        recorder.close()


@pytest.mark.timeout(120)
def test_a_fire_lane_with_nothing_in_it_never_opens_its_main_stream(fresh_mosquitto, streams, tmp_path):
    sky = {"id": "sky", "kind": "fire_lane", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 0.08], [0.0, 0.08]]}
    site = one_camera_site(fresh_mosquitto.port, streams.url("street.mp4"), detect_url=streams.url("street_sub.mp4"),
                           detect_fps=2, decode="all", zones=[sky])
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    try:
        worker = node.workers[0]
        wait_until(lambda: _samples(worker) >= 12, 60, what="a dozen samples of the sub-stream")
        assert worker.reader.frames_in > 0
        # One RTSP session to the camera, not two, and nothing demuxed of the 1280x720 stream.
        assert worker.evidence_reader.opens == 0 and worker.evidence_reader.frames_in == 0
    finally:
        node.stop()
