"""Zone configuration for occupancy rules and per-hazard detect cadence, as a user writes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from broker.cameraconfig import CameraConfig
from broker.configbase import ConfigError
from broker.siteconfig import load_camera_rules, load_site_config
from broker.zonekinds import ZONE_KINDS
from tests.edge.conftest import CAMERA_CONFIGS
from tests.support import PROJECT_ROOT

SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def write_rules(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def occupancy(**kw) -> dict:
    return {"id": "yard", "kind": "occupancy", "polygon": SQUARE, "labels": ["person"]} | kw


def rules_with_zones(tmp_path: Path, kinds: list[str], **given):
    """A camera file with one zone of each kind, plus the options given (None: left out)."""
    zones = [occupancy(id=f"z{i}", kind=kind) | ({} if kind == "occupancy" else {"labels": None}) for i, kind in enumerate(kinds)]
    data: dict = {"zones": [{k: v for k, v in z.items() if v is not None} for z in zones]}
    data.update({k: v for k, v in given.items() if v is not None})
    return load_camera_rules(write_rules(tmp_path, data))


def problems(tmp_path: Path, data: dict) -> str:
    path = write_rules(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_camera_rules(path)
    text = str(err.value)
    assert str(path) in text
    return text


def test_crowd_and_night_intrusion_are_configuration_only(tmp_path: Path) -> None:
    rules = load_camera_rules(write_rules(tmp_path, {"timezone": "Asia/Shanghai", "zones": [
        occupancy(id="crowd", name="crowd gathering", min_count=5),
        occupancy(id="night", name="night intrusion", active_hours=["22:00-06:00"]),
    ]}))
    crowd, night = rules.zones
    assert (crowd.hazard.value, crowd.min_count, crowd.labels, crowd.name) == ("zone_occupancy", 5, ["person"], "crowd gathering")
    assert (crowd.dwell_s, crowd.clear_s, crowd.realarm_s) == (10, 10, 300)  # occupancy defaults
    assert night.min_count == 1 and [(a.isoformat(), b.isoformat()) for a, b in night.active_windows()] == [("22:00:00", "06:00:00")]
    assert rules.timezone == "Asia/Shanghai" and str(rules.tzinfo()) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("zone", "key", "hint"),
    [
        ({"labels": None}, "zones[0]", "labels is required for kind occupancy: add e.g. labels: [person]"),
        ({"labels": []}, "zones[0].labels", "list the labels to watch"),
        ({"min_count": 0}, "zones[0].min_count", "use a larger value"),
        ({"min_count": "many"}, "zones[0].min_count", "use a whole number"),
        ({"active_hours": ["22:00-6"]}, "zones[0].active_hours", 'write it as HH:MM-HH:MM, e.g. "22:00-06:00"'),
        ({"active_hours": ["24:00-06:00"]}, "zones[0].active_hours", "hours go 00-23 and minutes 00-59"),
        ({"active_hours": ["22:00-22:00"]}, "zones[0].active_hours", "to watch all day leave active_hours out"),
        ({"active_hours": []}, "zones[0].active_hours", "list at least one window"),
        ({"kind": "fire_lane", "labels": ["car"], "min_count": 2}, "zones[0]",
         "min_count applies only to zones of kind indoor or occupancy"),
        ({"kind": "fire_lane", "active_hours": ["22:00-06:00"]}, "zones[0]", "remove active_hours"),
    ],
)
def test_bad_occupancy_config_names_the_key_and_the_fix(tmp_path: Path, zone: dict, key: str, hint: str) -> None:
    spec = {k: v for k, v in (occupancy() | zone).items() if v is not None}
    text = problems(tmp_path, {"zones": [spec]})
    assert f"{key}:" in text and hint in text


def test_unknown_time_zone_is_named(tmp_path: Path) -> None:
    text = problems(tmp_path, {"timezone": "Mars/Olympus", "zones": [occupancy()]})
    assert "timezone:" in text and "Mars/Olympus" in text and "Asia/Shanghai" in text


def test_each_hazard_declares_its_cadence() -> None:
    profiles = {kind: spec.sampling for kind, spec in ZONE_KINDS.items()}
    assert {k: p.detect_fps for k, p in profiles.items()} == {"fire_lane": 1.0, "indoor": 2.0, "occupancy": 1.0}
    for profile in profiles.values():
        low, high = profile.fps_range
        assert low <= profile.detect_fps <= high
    assert profiles["fire_lane"].fps_range == (0.5, 1.0) and profiles["indoor"].fps_range == (2.0, 5.0)


@pytest.mark.parametrize(
    ("kinds", "given", "expected"),
    [
        (["fire_lane"], None, 1.0),
        (["occupancy"], None, 1.0),
        (["indoor"], None, 2.0),
        (["fire_lane", "indoor"], None, 2.0),  # the fastest profile among the zones
        (["fire_lane", "occupancy"], None, 1.0),
        ([], None, 1.0),  # health watch only
        (["fire_lane"], 0.5, 0.5),  # given, it wins
        (["fire_lane", "indoor"], 5, 5.0),
        (["indoor"], 1, 1.0),
    ],
)
def test_detect_fps_defaults_to_the_fastest_zone_profile(tmp_path: Path, kinds: list[str], given, expected: float) -> None:
    assert rules_with_zones(tmp_path, kinds, detect_fps=given).detect_fps == expected


@pytest.mark.parametrize(
    ("kinds", "given", "expected"),
    [
        (["fire_lane"], None, 480),  # vehicles are large: a smaller input finds them as well
        (["indoor"], None, 640),
        (["fire_lane", "indoor"], None, 640),  # the widest profile among the zones
        ([], None, 640),
        (["fire_lane"], 960, 960),  # given, it wins (a distant lane on a 1080p camera)
    ],
)
def test_detect_width_defaults_to_the_widest_zone_profile(tmp_path: Path, kinds: list[str], given, expected: int) -> None:
    assert rules_with_zones(tmp_path, kinds, detect_width=given).detect_width == expected


def test_detect_width_off_the_model_stride_names_the_key(tmp_path: Path) -> None:
    text = problems(tmp_path, {"detect_width": 500, "zones": []})
    assert "detect_width" in text and "multiple of 32" in text


def test_occupancy_cameras_decode_every_frame() -> None:
    camera = CameraConfig(id="yard-cam", url="rtsp://127.0.0.1/yard", zones=[occupancy()])
    assert camera.detect_fps == 1.0 and camera.decode_mode() == "all"


def test_shipped_configs_load() -> None:
    rules = load_camera_rules(CAMERA_CONFIGS / "indoor-occupancy.yaml")
    kinds = {z.kind for z in rules.zones}
    assert kinds == {"occupancy"} and any(z.active_hours for z in rules.zones) and any((z.min_count or 1) > 1 for z in rules.zones)
    site = load_site_config(PROJECT_ROOT / "configs" / "demo.yaml")
    hazards = {z.hazard.value for e in site.edges for c in e.cameras for z in c.zones}
    assert hazards == {"fire_lane_blocked", "ebike_indoor"}  # the demo keeps its two hazards


def test_a_model_with_an_ebike_class_changes_what_the_ebike_zone_reacts_to() -> None:
    from broker.zoneconfig import ZoneConfig, labels_for_model

    coco = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
    trained = (*coco, "ebike")
    assert labels_for_model(["motorcycle", "bicycle"], coco) == ("motorcycle", "bicycle")
    # With an e-bike class a pedal bicycle in the lift is no alarm any more.
    assert labels_for_model(["motorcycle", "bicycle"], trained) == ("ebike",)
    # A motorcycle in a fire lane still blocks it; a parked e-bike does too.
    assert labels_for_model(["car", "truck", "bus", "motorcycle"], trained) == ("car", "truck", "bus", "motorcycle", "ebike")
    assert labels_for_model(["person"], trained) == ("person",)
    lift = ZoneConfig.model_validate({"id": "lift", "kind": "indoor", "polygon": [[0, 0], [1, 0], [1, 1]]})
    assert lift.for_model(coco) is lift and lift.for_model(trained).labels == ["ebike"]
