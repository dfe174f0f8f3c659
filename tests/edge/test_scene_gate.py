"""The scene-change gate (edge/scene_gate.py): unchanged zones skip the detector, noise and slow
light changes do not count, an arrival runs it at once, a change too small to see is caught by
``max_skip_s``, and replaying the shared footage gives the same events with the gate as without."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from broker.siteconfig import load_camera_rules
from broker.zoneconfig import SceneGateConfig, ZoneConfig
from edge.replay import replay
from edge.scene_gate import SceneGate, max_skip_for
from tests.edge.conftest import CAMERA_CONFIGS

KERB = ZoneConfig(id="kerb-lane", kind="fire_lane", polygon=[(0.05, 0.74), (0.95, 0.74), (0.95, 0.90), (0.05, 0.90)])


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def car_and_background(street_frame: np.ndarray, yolov8n) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:  # type: ignore[no-untyped-def]
    """A real parked car cut from the street clip, and the same street with the car's spot taken
    from a frame region without cars (built at test time from the shared footage)."""
    h, w = street_frame.shape[:2]
    cars = [d for d in yolov8n.detect(street_frame) if d.label == "car" and d.box[3] > 0.78 * h]
    assert cars, "the street clip's kerb lane has parked cars"
    x1, y1, x2, y2 = (int(v) for v in max(cars, key=lambda d: d.score).box)
    car = street_frame[y1:y2, x1:x2].copy()
    # The road above the kerb lane (no parked cars there) stretched over the whole lane: an empty lane.
    empty = street_frame.copy()
    road = street_frame[int(0.55 * h):int(0.62 * h)]
    empty[int(0.72 * h):int(0.92 * h)] = cv2.resize(road, (w, int(0.92 * h) - int(0.72 * h)))
    return car, empty, (x1, y1, x2, y2)


def test_noise_compression_and_slow_light_changes_do_not_run_the_detector(street_frame: np.ndarray) -> None:
    gate = SceneGate(SceneGateConfig(), [KERB])
    assert gate.needs_detection(street_frame, 0.0)  # nothing to compare with yet
    gate.analysed(street_frame, 0.0)
    rng = np.random.default_rng(7)
    for i in range(1, 10):
        noisy = np.clip(street_frame.astype(np.int16) + rng.normal(0, 4, street_frame.shape).astype(np.int16), 0, 255)
        sample = _jpeg_round_trip(noisy.astype(np.uint8), quality=60 + 3 * i)
        dusk = cv2.convertScaleAbs(sample, alpha=1.0, beta=-3.0 * i)  # the light fades a little every sample
        assert not gate.needs_detection(dusk, float(i)), f"sample {i} changed by {gate.last_change:.1f}"
        gate.reused()
    assert (gate.counts.detected, gate.counts.gated) == (1, 9)


def test_a_car_that_parks_runs_the_detector_at_once(car_and_background) -> None:  # type: ignore[no-untyped-def]
    car, empty, (x1, y1, x2, y2) = car_and_background
    gate = SceneGate(SceneGateConfig(), [KERB])
    gate.analysed(empty, 0.0)
    assert not gate.needs_detection(empty, 1.0)
    parked = empty.copy()
    parked[y1:y2, x1:x2] = car
    assert gate.needs_detection(parked, 2.0) and gate.last_change > 3 * SceneGateConfig().threshold


def test_a_change_too_small_to_see_is_caught_within_max_skip(car_and_background) -> None:  # type: ignore[no-untyped-def]
    car, empty, (x1, y1, x2, y2) = car_and_background
    gate = SceneGate(SceneGateConfig(), [KERB])
    assert gate.max_skip_s == max_skip_for([KERB]) == 30.0
    gate.analysed(empty, 0.0)
    # The car fades in at 3 % per second: every sample differs from the last by little; against the
    # last analysed frame the difference grows until it trips, and never later than max_skip_s.
    tripped_at = None
    for second in range(1, 40):
        frame = empty.copy()
        alpha = min(1.0, 0.03 * second)
        frame[y1:y2, x1:x2] = cv2.addWeighted(car, alpha, empty[y1:y2, x1:x2], 1 - alpha, 0)
        if gate.needs_detection(frame, float(second)):
            tripped_at = second
            break
        gate.reused()
    assert tripped_at is not None and tripped_at <= 30
    # A change that never grows (a faint reflection) is still looked at every max_skip_s.
    faint = SceneGate(SceneGateConfig(threshold=200), [KERB])
    faint.analysed(empty, 0.0)
    parked = empty.copy()
    parked[y1:y2, x1:x2] = car
    assert not faint.needs_detection(parked, 29.0) and faint.needs_detection(parked, 30.0)


@pytest.mark.parametrize(("video", "camera_config"), [
    ("street_parked_cars_720p.mp4", "street-parked.yaml"),  # parked cars: a fire lane blocked
    ("elevator_escooter_20s.mp4", "elevator.yaml"),  # an e-scooter wheeled into the lift
    ("indoor_people_walking.mp4", "indoor-occupancy.yaml"),  # people coming and going
])
def test_replays_give_the_same_events_with_the_gate_as_without(shared_media: Path, yolov8n, video: str,  # type: ignore[no-untyped-def]
                                                               camera_config: str) -> None:
    base = datetime(2026, 12, 1, tzinfo=UTC)
    runs = {}
    for enabled in (False, True):
        rules = load_camera_rules(CAMERA_CONFIGS / camera_config)
        rules = rules.model_copy(update={"scene_gate": SceneGateConfig(enabled=enabled)})
        runs[enabled] = [(e["hazard"], e["phase"], e.get("zone"), e["t"])
                         for e in replay(shared_media / video, rules, detector=yolov8n, start_wall=base)]
    assert runs[True] == runs[False] and runs[True], runs


def test_gate_settings_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="threshold"):
        SceneGateConfig(threshold=0)
    with pytest.raises(ValidationError, match="max_skip_s"):
        SceneGateConfig(max_skip_s=-1)
    assert max_skip_for([]) == 30.0
    indoor = ZoneConfig(id="car", kind="indoor", polygon=[(0.2, 0.6), (0.7, 0.6), (0.7, 0.9)])
    assert SceneGate(SceneGateConfig(), [KERB, indoor]).max_skip_s == 3.0  # the most urgent zone decides
    assert SceneGate(SceneGateConfig(max_skip_s=10), [KERB]).max_skip_s == 10
