"""The camera pipeline with the real detector: sampling, contract events and evidence."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from broker.payloads import Phase, parse_event
from broker.zoneconfig import CameraRules, ZoneConfig
from edge.pipeline import CameraPipeline
from tests.edge.conftest import CAMERA_CONFIGS

T0 = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
NEAR_KERB = [(0.05, 0.74), (0.95, 0.74), (0.95, 0.90), (0.05, 0.90)]


def make_pipeline(detector, zones: list[ZoneConfig], fps: float = 1.0) -> CameraPipeline:
    seq = itertools.count(100)
    return CameraPipeline(
        site="demo", edge="edge-1", camera_id="street-north", rules=CameraRules(zones=zones, detect_fps=fps),
        detector=detector, next_seq=lambda: next(seq), gb28181_channel_id="11010100001320000001",
    )


def test_due_samples_at_detect_fps_on_the_camera_clock(yolov8n) -> None:
    pipeline = make_pipeline(yolov8n, [], fps=2.0)
    frame = np.full((64, 64, 3), 128, np.uint8)
    analysed = []
    for i in range(0, 45):  # a 15 fps camera for 3 s; timestamps rounded to ms like a container's
        t = round(i / 15, 3)
        if pipeline.due(t):
            analysed.append(t)
            pipeline.process(frame, t, T0 + timedelta(seconds=t))
    # The first frame at or after each half second: a late sample does not push the next one back.
    assert analysed == [0.0, 0.533, 1.0, 1.533, 2.0, 2.533]
    # The camera's clock restarting (a reconnect) samples at once instead of waiting.
    assert pipeline.due(0.2)


def test_parked_cars_give_a_start_with_evidence_then_an_end_without(yolov8n, street_frame) -> None:
    import cv2

    zone = ZoneConfig(id="kerb-lane", kind="fire_lane", polygon=NEAR_KERB, dwell_s=3, clear_s=2, realarm_s=60)
    pipeline = make_pipeline(yolov8n, [zone])
    empty = np.full_like(street_frame, 90)  # the street with every car gone
    emissions = []
    for t in range(0, 8):
        frame = street_frame if t < 5 else empty
        emissions += pipeline.process(frame, float(t), T0 + timedelta(seconds=t))

    assert [(e.event.phase, e.t) for e in emissions] == [(Phase.START, 3.0), (Phase.END, 6.0)]
    start, end = emissions[0].event, emissions[1].event
    assert start.incident_key == end.incident_key == f"demo/edge-1/street-north/kerb-lane/fire_lane_blocked/{int(T0.timestamp() * 1000)}"
    assert start.started_at == end.started_at == T0  # the cars stood there from the first frame
    assert start.observed_at == T0 + timedelta(seconds=3) and end.observed_at == T0 + timedelta(seconds=6)
    assert (start.seq, end.seq) == (100, 101) and start.event_id != end.event_id
    assert start.gb28181_channel_id == "11010100001320000001"
    assert start.model is not None and start.model.name == "yolov8n" and start.model.sha256 == yolov8n.model_sha256

    # The parked cars of the near kerb, boxes normalised, each footprint inside the zone.
    assert len(start.objects) >= 3 and {o.label for o in start.objects} <= {"car", "truck", "bus", "motorcycle"}
    for obj in start.objects:
        x1, y1, x2, y2 = obj.box
        assert 0.05 < (x1 + x2) / 2 < 0.95 and 0.74 < y2 < 0.90 and obj.track_id is not None
    assert start.score == max(o.score for o in start.objects)

    # Evidence: one annotated JPEG whose sha256 and size match the reference in the event.
    (blob,) = emissions[0].blobs
    (ref,) = start.evidence
    assert (ref.sha256, ref.bytes, ref.content_type) == (blob.sha256, len(blob.data), "image/jpeg")
    assert hashlib.sha256(blob.data).hexdigest() == blob.sha256
    picture = cv2.imdecode(np.frombuffer(blob.data, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == street_frame.shape
    # Drawn on a copy: the zone outline (amber) is in the snapshot, not in the camera's frame.
    y = int(0.74 * street_frame.shape[0])
    x = int(0.5 * street_frame.shape[1])
    assert picture[y, x, 2] > 180 and picture[y, x, 0] < 90
    assert not (street_frame[y, x, 2] > 180 and street_frame[y, x, 0] < 90)
    assert emissions[1].blobs == [] and end.evidence == [] and end.objects == []

    # What goes on the wire parses back under the contract.
    for e in emissions:
        assert parse_event(e.event.to_json()) == e.event


def test_process_refuses_a_naive_wall_clock(yolov8n, street_frame) -> None:
    with pytest.raises(ValueError, match="timezone"):
        make_pipeline(yolov8n, []).process(street_frame, 0.0, datetime(2026, 5, 4, 8, 0, 0))


def test_demo_and_replay_configs_put_zones_on_real_objects(yolov8n, street_frame) -> None:
    """The shipped configs must watch the parked row, not the empty lane, from the first frame."""
    from broker.siteconfig import load_camera_rules, load_site_config
    from edge.geometry import footprint, normalise_box, point_in_polygon
    from tests.support import PROJECT_ROOT

    h, w = street_frame.shape[:2]
    feet = [footprint(normalise_box(d.box, w, h)) for d in yolov8n.detect(street_frame) if d.label == "car" and d.score >= 0.35]
    site = load_site_config(PROJECT_ROOT / "configs" / "demo.yaml")
    _, street = site.camera("street-north") or (None, None)
    assert street is not None
    for polygon in (street.zones[0].polygon, load_camera_rules(CAMERA_CONFIGS / "street-parked.yaml").zones[0].polygon):
        assert sum(point_in_polygon(f, polygon) for f in feet) >= 4
    lane = load_camera_rules(CAMERA_CONFIGS / "street-lane.yaml").zones[0].polygon
    assert not any(point_in_polygon(f, lane) for f in feet)


def test_after_detect_runs_once_detection_is_done_even_when_it_fails(yolov8n, street_frame) -> None:
    calls: list[str] = []

    class Failing:
        model_name, model_sha256 = "x", "0" * 64

        def detect(self, frame_bgr, input_width=None):
            calls.append("detect")
            raise RuntimeError("inference failed")

    pipeline = make_pipeline(yolov8n, [])
    pipeline.process(street_frame, 0.0, T0, after_detect=lambda: calls.append("after"))
    assert calls == ["after"]
    failing = make_pipeline(Failing(), [])
    with pytest.raises(RuntimeError):
        failing.process(street_frame, 0.0, T0, after_detect=lambda: calls.append("after-failure"))
    assert calls[-2:] == ["detect", "after-failure"]
