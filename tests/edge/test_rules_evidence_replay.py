"""Track-level evidence on real footage with the default model (YOLOv8n), through `edge replay`:
each camera config watches the same floor twice, as by default and with ``track_evidence``.

Measured (docs/models.md): on the negative footage the lever adds no episode (the model's weak
boxes there never follow one object); on the e-scooter clip it starts exactly when the default
does; on the partly hidden e-bike of elevator_ebike_cctv_20s.mp4 neither starts, because YOLOv8n
gives it no motorcycle or bicycle box at all, not even at 0.05: there is nothing to add up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from broker.siteconfig import load_camera_rules
from edge.replay import replay
from models.detector import Detector
from tests.edge.conftest import CAMERA_CONFIGS

T0 = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)


def starts(video: Path, config: str, detector: Detector) -> dict[str, list[float]]:
    rules = load_camera_rules(CAMERA_CONFIGS / config)
    out: dict[str, list[float]] = {z.id: [] for z in rules.zones}
    for event in replay(video, rules, detector=detector, start_wall=T0):
        if event["phase"] == "start":
            out[event["zone"]].append(event["t"])
    return out


def test_the_lever_adds_no_false_episode_on_the_negative_footage(shared_media: Path, yolov8n: Detector) -> None:
    for clip in ("indoor_people_walking.mp4", "lot_person_bicycle_car.mp4"):
        assert starts(shared_media / clip, "indoor-frame-evidence.yaml", yolov8n) == {"frame": [], "frame-evidence": []}, clip


def test_the_lever_starts_the_escooter_when_the_default_does(shared_media: Path, yolov8n: Detector) -> None:
    got = starts(shared_media / "elevator_escooter_20s.mp4", "elevator-evidence.yaml", yolov8n)
    assert got == {"car-floor": [2.0], "car-floor-evidence": [2.0]}


def test_the_partly_hidden_ebike_is_missed_with_and_without_the_lever(shared_media: Path, yolov8n: Detector) -> None:
    got = starts(shared_media / "elevator_ebike_cctv_20s.mp4", "lift-cctv-evidence.yaml", yolov8n)
    assert got == {"car-floor": [], "car-floor-evidence": []}
