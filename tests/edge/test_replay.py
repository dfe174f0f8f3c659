"""`edge replay` on real footage with the real model: the hazards a user would see, and silence."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.payloads import parse_event
from broker.siteconfig import load_camera_rules
from broker.zoneconfig import CameraRules, ZoneConfig
from edge.replay import VideoError, replay
from tests.edge.conftest import CAMERA_CONFIGS
from tests.support import PROJECT_ROOT

T0 = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)


def run_replay(video: Path, rules: CameraRules, detector, **kw) -> list[dict]:
    return list(replay(video, rules, detector=detector, start_wall=T0, **kw))


def test_street_parked_cars_alarm_and_the_empty_lane_stays_quiet(shared_media: Path, yolov8n, tmp_path: Path) -> None:
    parked = load_camera_rules(CAMERA_CONFIGS / "street-parked.yaml")
    lane = load_camera_rules(CAMERA_CONFIGS / "street-lane.yaml")
    assert parked.detect_fps == lane.detect_fps == 1
    # Both zones in one pass over the clip (one decode, one inference per sample).
    rules = CameraRules(zones=parked.zones + lane.zones, detect_fps=1)
    events = run_replay(shared_media / "street_parked_cars_720p.mp4", rules, yolov8n, camera="street", evidence_dir=tmp_path)

    assert {e["zone"] for e in events} == {"near-kerb"}, "the driving lane between the rows must never alarm"
    start = events[0]
    assert (start["hazard"], start["phase"]) == ("fire_lane_blocked", "start")
    assert 10.0 <= start["t"] < 11.5  # dwell_s 10 at 1 fps from the first frame
    # The clip is 47 s and nothing leaves: an update after realarm_s (20 s), and no end.
    assert [e["phase"] for e in events] == ["start", "update"]
    assert 30.0 <= events[1]["t"] < 31.5
    assert len({e["incident_key"] for e in events}) == 1 and len({e["event_id"] for e in events}) == 2
    # The tracker names the parked cars: each has an id, and the cars of the start are still
    # there, under the same ids, at the update 20 s later.
    start_ids = {o["track_id"] for o in start["objects"]}
    assert None not in start_ids and len(start_ids) == len(start["objects"])
    assert start_ids <= {o["track_id"] for o in events[1]["objects"]}
    assert [e["seq"] for e in events] == [0, 1]
    for e in events:
        assert parse_event(json.dumps({k: v for k, v in e.items() if k != "t"}))
        (ref,) = e["evidence"]
        assert (tmp_path / f"{ref['sha256']}.jpg").stat().st_size == ref["bytes"]
    assert start["started_at"] == "2026-05-04T08:00:00Z"


def test_escooter_in_elevator_alarms(shared_media: Path, yolov8n) -> None:
    rules = load_camera_rules(CAMERA_CONFIGS / "elevator.yaml")
    events = run_replay(shared_media / "elevator_escooter_20s.mp4", rules, yolov8n, camera="elevator-1")
    assert [(e["hazard"], e["phase"]) for e in events] == [("ebike_indoor", "start")]
    assert 2.0 <= events[0]["t"] < 3.0
    assert events[0]["objects"][0]["label"] == "motorcycle" and events[0]["score"] >= 0.4


def test_people_walking_indoors_never_alarm(shared_media: Path, yolov8n) -> None:
    rules = load_camera_rules(CAMERA_CONFIGS / "indoor-room.yaml")
    floor = rules.zones[0]
    # Control zone: the same floor watching for people proves that the footage does reach the
    # rule (people walk in and stand), so the silence of the e-bike zone means something.
    people = ZoneConfig(id="people", kind="indoor", polygon=floor.polygon, dwell_s=2, labels=["person"])
    events = run_replay(
        shared_media / "indoor_people_walking.mp4", CameraRules(zones=[floor, people], detect_fps=rules.detect_fps), yolov8n
    )
    assert {e["zone"] for e in events} == {"people"}


def test_traffic_through_a_parking_lot_never_alarms(shared_media: Path, yolov8n) -> None:
    rules = load_camera_rules(CAMERA_CONFIGS / "parking-lot.yaml")
    lane = rules.zones[0]
    # Control zone: the same area counting mere presence of vehicles for the same dwell. It
    # alarms, so vehicles do stay in view longer than the dwell; only their motion spares the lane.
    presence = ZoneConfig(
        id="presence", kind="indoor", polygon=lane.polygon, dwell_s=lane.dwell_s, clear_s=lane.clear_s,
        labels=lane.labels, min_score=lane.min_score,
    )
    events = run_replay(
        shared_media / "parking_lot_traffic.mp4", CameraRules(zones=[lane, presence], detect_fps=rules.detect_fps), yolov8n
    )
    assert {e["zone"] for e in events} == {"presence"}


def test_missing_or_unreadable_video_is_a_clear_error(tmp_path: Path, yolov8n) -> None:
    rules = load_camera_rules(CAMERA_CONFIGS / "elevator.yaml")
    with pytest.raises(VideoError, match="no such file"):
        run_replay(tmp_path / "nope.mp4", rules, yolov8n)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoError):
        run_replay(junk, rules, yolov8n)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "sharpeyes"), "edge", "replay", *args],
        capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT,
    )


def test_cli_prints_one_json_event_per_line_and_logs_to_stderr(shared_media: Path, tmp_path: Path) -> None:
    config = tmp_path / "Elevator Cam_1.yaml"  # the camera id is made from this name
    config.write_text((CAMERA_CONFIGS / "elevator.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    result = _cli(str(shared_media / "elevator_escooter_20s.mp4"), "--camera-config", str(config), "--site", "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    event = json.loads(lines[0])
    assert (event["hazard"], event["phase"], event["site"], event["edge"], event["camera"]) == (
        "ebike_indoor", "start", "demo", "replay", "elevator-cam-1",
    )
    assert isinstance(event["t"], float) and event["schema"] == "sharpeyes.event/1"
    assert "analysed" in result.stderr  # the progress log went to stderr, not into the JSON stream


def test_cli_rejects_a_malformed_camera_config_with_exit_2(shared_media: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Lobby Cam.yaml"
    bad.write_text("zones:\n  - id: lobby\n    kind: corridor\n    polygon: [[0, 0], [1, 0], [1, 1]]\n", encoding="utf-8")
    result = _cli(str(shared_media / "elevator_escooter_20s.mp4"), "--camera-config", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "zones[0].kind" in result.stderr and "fix:" in result.stderr
    assert result.stdout == ""


def test_occupancy_rules_by_configuration_on_people_walking_indoors(shared_media: Path, yolov8n) -> None:
    """One person at a time walks in, stands and leaves: someone is in the room, never a crowd,
    and nobody at night. T0 is 08:00 UTC, 16:00 in the config's Asia/Shanghai."""
    rules = load_camera_rules(CAMERA_CONFIGS / "indoor-occupancy.yaml")
    assert rules.detect_fps == 1.0  # the occupancy profile, none given
    floor = rules.zones[0].polygon
    # Active from one minute into the clip to two: it alarms inside the window and ends when it closes.
    window = ZoneConfig(
        id="window", kind="occupancy", labels=["person"], polygon=floor, dwell_s=3, active_hours=["16:01-16:02"],
    )
    pair = ZoneConfig(id="pair", kind="occupancy", labels=["person"], polygon=floor, dwell_s=3, min_count=2)
    events = run_replay(
        shared_media / "indoor_people_walking.mp4",
        rules.model_copy(update={"zones": [*rules.zones, window, pair]}),
        yolov8n,
    )
    by_zone: dict[str, list[dict]] = {}
    for e in events:
        by_zone.setdefault(e["zone"], []).append(e)
    assert set(by_zone) == {"someone-in", "window"}, "no crowd, not even two people, and nobody at night"
    someone = by_zone["someone-in"]
    assert someone[0]["hazard"] == "zone_occupancy" and someone[0]["phase"] == "start"
    assert 7.0 <= someone[0]["t"] <= 15.0 and someone[0]["objects"][0]["label"] == "person"
    assert [e["phase"] for e in by_zone["window"]] == ["start", "end"]
    start, end = by_zone["window"]
    assert 60.0 <= start["t"] < 70.0 and 120.0 <= end["t"] < 121.5
    assert start["incident_key"] == end["incident_key"]


def test_a_wavering_score_on_real_footage_is_one_episode_with_hysteresis(shared_media: Path, yolov8n) -> None:
    """The e-scooter in the lift scores 0.63-0.75 from sample to sample: with min_score 0.70 the strict
    rule opens and ends episodes while it stands there; the default keep score holds it as one."""
    floor = load_camera_rules(CAMERA_CONFIGS / "elevator.yaml").zones[0]
    wavering = floor.model_copy(update={"min_score": 0.70, "keep_score": 0.42, "dwell_s": 1.0, "clear_s": 1.5})
    strict = wavering.model_copy(update={"keep_score": 0.70})

    def starts(zone: ZoneConfig) -> int:
        events = run_replay(shared_media / "elevator_escooter_20s.mp4", CameraRules(zones=[zone], detect_fps=2), yolov8n)
        return [e["phase"] for e in events].count("start")

    assert starts(strict) >= 2
    assert starts(wavering) == 1
