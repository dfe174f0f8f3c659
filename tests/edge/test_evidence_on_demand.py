"""The evidence (main) stream on demand: which cameras open it only while an alarm may come, when
the rules say so, and a real stream opened and closed on a real RTSP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.cameraconfig import CameraConfig
from broker.zoneconfig import ZoneConfig
from edge.camera import CameraReader
from edge.evidence_stream import EvidenceDemand, EvidenceStream, reaches_back
from edge.rules import FireLaneRule, PresenceRule, ZoneObject
from sharpeyes.rtsp_server import FootageServer
from tests.support import wait_until

LANE = {"id": "lane", "kind": "fire_lane", "polygon": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]}
LIFT = {"id": "lift", "kind": "indoor", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}


def camera(**fields) -> CameraConfig:
    return CameraConfig.model_validate({"id": "cam", "url": "rtsp://127.0.0.1/main",
                                        "detect_url": "rtsp://127.0.0.1/sub", **fields})


def test_beside_a_sub_stream_the_main_stream_opens_on_demand_and_lifts_keep_their_preroll_on_the_sub_stream() -> None:
    # A fire lane alarms after 120 s by default: ample time to open the stream for a 5 s pre-roll.
    assert camera(zones=[LANE]).evidence_on_demand()
    assert not camera(zones=[LANE]).preroll_from_detection_stream()
    # An e-bike alarms after 2 s: its clip's 5 s before the alarm come from the sub-stream's ring.
    assert camera(zones=[LIFT]).evidence_on_demand()
    assert camera(zones=[LIFT]).preroll_from_detection_stream()
    assert camera(zones=[LANE, LIFT]).preroll_from_detection_stream()
    # A dwell too short for the pre-roll plus the opening needs the sub-stream's ring.
    assert camera(zones=[{**LANE, "dwell_s": 9}], clip_pre_s=5).preroll_from_detection_stream()
    assert not camera(zones=[{**LANE, "dwell_s": 10}], clip_pre_s=5).preroll_from_detection_stream()
    # No clips, no ring.
    assert not camera(zones=[LIFT], clips=False).preroll_from_detection_stream()
    # The operator's choice wins: always open, the main stream's ring has every clip.
    assert not camera(zones=[LIFT], evidence_stream="always").evidence_on_demand()
    assert not camera(zones=[LIFT], evidence_stream="always").preroll_from_detection_stream()
    assert camera(zones=[LIFT], evidence_stream="on_demand").evidence_on_demand()
    # Without a sub-stream the one stream is always open.
    no_sub = CameraConfig.model_validate({"id": "cam", "url": "rtsp://127.0.0.1/main", "zones": [LIFT],
                                          "evidence_stream": "on_demand"})
    assert not no_sub.evidence_on_demand() and not no_sub.preroll_from_detection_stream()


def test_a_clip_comes_from_the_main_stream_only_when_its_ring_reaches_back_to_the_clip_start() -> None:
    assert reaches_back(first_keyframe=100.0, start=100.0)
    assert reaches_back(first_keyframe=95.0, start=100.0)
    # Opened 2 s before a lift's alarm, with a 5 s pre-roll: the sub-stream's ring cuts it.
    assert not reaches_back(first_keyframe=103.0, start=100.0)
    assert not reaches_back(first_keyframe=None, start=100.0)  # no keyframe yet


def test_a_misspelt_evidence_stream_mode_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="evidence_stream") as err:
        camera(zones=[LANE], evidence_stream="lazy")
    assert "on_demand" in str(err.value)


def test_the_demand_lingers_after_the_last_need() -> None:
    demand = EvidenceDemand(linger_s=30)
    assert not demand.wanted(0.0, needed=False)  # nothing has needed it yet
    assert demand.wanted(10.0, needed=True)
    assert demand.wanted(39.0, needed=False)  # a vehicle lost for a few samples keeps the stream
    assert not demand.wanted(40.0, needed=False)
    assert demand.wanted(41.0, needed=True)


def test_a_fire_lane_watches_from_the_first_vehicle_until_it_is_forgotten() -> None:
    rule = FireLaneRule(ZoneConfig.model_validate({**LANE, "dwell_s": 10, "clear_s": 5}), grace_s=10)
    parked = ZoneObject("car", 0.8, (0.4, 0.6, 0.5, 0.7))
    assert not rule.watching
    rule.step(0.0, [ZoneObject("car", 0.8, (0.4, 0.1, 0.5, 0.2))])  # a car outside the lane
    assert not rule.watching
    rule.step(2.0, [parked])
    assert rule.watching  # its dwell is being timed: the alarm may come in 10 s
    for t in range(4, 14, 2):
        rule.step(float(t), [parked])
    assert rule.watching  # the episode is open
    for t in range(14, 40, 2):
        rule.step(float(t), [])
    assert not rule.watching  # ended, and the vehicle forgotten


def test_an_indoor_zone_watches_while_an_ebike_is_being_timed() -> None:
    rule = PresenceRule(ZoneConfig.model_validate({**LIFT, "dwell_s": 4, "clear_s": 2}))
    ebike = ZoneObject("motorcycle", 0.7, (0.3, 0.3, 0.6, 0.9))
    assert not rule.watching
    rule.step(0.0, [ebike])
    assert rule.watching
    for t in (0.5, 1.0, 1.5, 2.0):
        rule.step(t, [])
    assert not rule.watching


@pytest.mark.timeout(90)
def test_an_on_demand_stream_opens_fills_its_ring_and_closes_after_the_linger(shared_media: Path, tmp_path: Path):
    with FootageServer({"street.mp4": shared_media / "street_parked_cars_720p.mp4"}, workdir=tmp_path) as server:
        url = server.url("street.mp4")
        stream = EvidenceStream(lambda delay_s: CameraReader("cam (evidence stream)", url, decode="none",
                                                             ring_seconds=10.0, start_delay_s=delay_s),
                                on_demand=True, linger_s=3.0)
        stream.start()
        try:
            assert not stream.is_open and stream.opens == 0  # no session until a rule watches
            assert stream.packets_between(0.0, 1e9) == (None, [])
            stream.update(100.0, needed=True)
            assert stream.is_open and stream.opens == 1
            wait_until(lambda: (stream.ring_span() or (0.0, 0.0))[1] - (stream.ring_span() or (0.0, 0.0))[0] > 2.0,
                       30, what="two seconds of the main stream in the ring")
            # A session may start between keyframes: a clip starts at the first one.
            wait_until(lambda: stream.first_keyframe_at() is not None, 30, what="a keyframe in the ring")
            template, packets = stream.packets_between(0.0, 1e12)
            assert template is not None and packets and packets[0].is_keyframe
            assert stream.keyframe_image() is not None
            stream.update(102.9, needed=False)
            assert stream.is_open  # within the linger
            received = stream.frames_in
            stream.update(103.0, needed=False)
            assert not stream.is_open and stream.ring_span() is None
            assert stream.frames_in >= received  # what the closed reader received still counts
            stream.update(200.0, needed=True)  # the next vehicle: a fresh session
            assert stream.opens == 2
            wait_until(lambda: stream.frames_in > received + 10, 30, what="packets of the second session")
        finally:
            stream.stop()
