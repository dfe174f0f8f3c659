"""The v1 contract and the site configuration: what is accepted, and how refusals read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from broker import topics
from broker.configbase import ConfigError
from broker.payloads import (
    Actuation,
    ActuationAction,
    ContractError,
    HazardEvent,
    Receipt,
    json_schemas,
    parse_actuation,
    parse_event,
)
from broker.siteconfig import load_camera_rules, load_site_config

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _event(**overrides) -> dict:
    body = {
        "schema": "sharpeyes.event/1", "event_id": str(uuid.uuid4()), "incident_key": "s/e/c/z/fire_lane_blocked/1",
        "hazard": "fire_lane_blocked", "phase": "start", "site": "s", "edge": "e", "camera": "c", "zone": "z",
        "started_at": NOW.isoformat(), "observed_at": (NOW + timedelta(seconds=120)).isoformat(), "seq": 7,
        "score": 0.8, "objects": [{"label": "car", "score": 0.8, "box": [0.1, 0.5, 0.3, 0.9], "track_id": 3}],
        "evidence": [{"sha256": "a" * 64, "content_type": "image/jpeg", "bytes": 1234}],
        "model": {"name": "yolov8n", "sha256": "b" * 64}, "gb28181_channel_id": "11010100001320000001",
    }
    body.update(overrides)
    return body


def test_event_round_trips_through_json():
    event = parse_event(json.dumps(_event()))
    assert isinstance(event, HazardEvent)
    assert parse_event(event.to_json()) == event
    assert event.to_wire_dict()["schema"] == "sharpeyes.event/1"
    assert event.to_wire_dict()["started_at"] == "2026-11-23T08:00:00Z"
    assert parse_event(event.to_wire()) == event


def test_every_message_has_the_same_three_wire_forms():
    # to_wire() is always the bytes published; to_json() the same text; to_wire_dict() the same as a dict.
    event = parse_event(json.dumps(_event(zone=None)))
    hold = Actuation(event_id=uuid.uuid4(), site="s", edge="e", camera="c", zone="z", actuator="door",
                     kind="modbus_tcp", action=ActuationAction.HOLD, ok=True, at=NOW)
    receipt = Receipt(site="s", edge="e", at=NOW)
    for message in (event, hold, receipt):
        wire = message.to_wire()
        assert isinstance(wire, bytes) and wire.decode() == message.to_json()
        assert json.loads(wire) == message.to_wire_dict()
    assert b'"zone":null' in event.to_wire()  # events send unset fields as null, as they always have
    assert b"null" not in hold.to_wire() and "reason" not in hold.to_wire_dict()  # actuation leaves them out
    assert parse_actuation(hold.to_wire()) == hold


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps(_event(schema="sharpeyes.event/2")).encode(), "unknown schema"),
        (json.dumps(_event(phase="middle")).encode(), "phase"),
        (json.dumps(_event(objects=[{"label": "car", "score": 0.5, "box": [0.5, 0.5, 1.5, 0.9]}])).encode(), "objects.0.box"),
        (json.dumps(_event(started_at="2026-11-23T08:00:00")).encode(), "timezone"),
        (json.dumps(_event(observed_at=(NOW - timedelta(seconds=1)).isoformat())).encode(), "before started_at"),
        (json.dumps({k: v for k, v in _event().items() if k != "event_id"}).encode(), "event_id"),
        (json.dumps(_event(extra_field=1)).encode(), "extra_field"),
    ],
)
def test_malformed_events_are_refused_with_a_reason(payload, reason):
    with pytest.raises(ContractError) as err:
        parse_event(payload)
    assert reason in err.value.reason


def test_topics_build_and_parse_back():
    sha = "c" * 64
    assert topics.parse_topic(topics.event_topic("s", "e1")).kind == "event"
    parts = topics.parse_topic(topics.evidence_topic("s", "e1", sha))
    assert (parts.kind, parts.site, parts.edge, parts.sha256) == ("evidence", "s", "e1", sha)
    assert topics.parse_topic(topics.camera_health_topic("s", "e1", "cam")).camera == "cam"
    assert topics.parse_topic(topics.reply_topic("s", "e1", "recheck")).kind == "reply"
    assert topics.parse_topic(topics.worker_task_topic("s", "wang")).worker == "wang"
    assert topics.parse_topic("sharpeyes/v1/s/e1/evidence/not-a-sha") is None
    assert topics.parse_topic("other/v1/s/e1/event") is None
    with pytest.raises(ValueError):
        topics.event_topic("Site", "e1")


def test_json_schema_export_covers_every_payload():
    schemas = json_schemas()
    assert set(schemas) >= {"sharpeyes.event/1", "sharpeyes.camera-health/1", "sharpeyes.edge-status/1",
                            "sharpeyes.task/1", "sharpeyes.command/1", "sharpeyes.reply/1"}
    assert "incident_key" in schemas["sharpeyes.event/1"]["properties"]


def _write(tmp_path, text: str):
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_demo_site_config_is_valid():
    from tests.support import PROJECT_ROOT

    site = load_site_config(PROJECT_ROOT / "configs" / "demo.yaml")
    assert {c.id for c in site.edge("edge-1").cameras} == {"street-north", "elevator-1"}


GOOD_TRIANGLE = [[0, 0], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("zone", "key", "hint"),
    [
        ({"polygon": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}, "zones[0].polygon", "no two sides cross"),
        ({"polygon": [[0.1, 0.1], [1.4, 0.1], [0.5, 0.8]]}, "zones[0].polygon", "outside 0..1"),
        ({"polygon": [[0.1, 0.1], [0.2, 0.2]]}, "zones[0].polygon", "at least 3 points"),
        ({"polygon": GOOD_TRIANGLE, "dwel_s": 5}, "zones[0].dwel_s", "remove this key or check its spelling"),
        ({"polygon": GOOD_TRIANGLE, "dwell_s": -3}, "zones[0].dwell_s", "use a larger value"),
        ({"polygon": GOOD_TRIANGLE, "kind": "parking"}, "zones[0].kind", "use one of the allowed values"),
    ],
)
def test_bad_zone_config_names_file_key_and_fix(tmp_path, zone, key, hint):
    camera = {"id": "cam", "url": "rtsp://127.0.0.1/x", "zones": [{"id": "z", "kind": "fire_lane", **zone}]}
    path = _write(tmp_path, yaml.safe_dump({"site": "s", "edges": [{"id": "e1", "cameras": [camera]}]}))
    with pytest.raises(ConfigError) as err:
        load_site_config(path)
    text = str(err.value)
    assert str(path) in text and f"edges[0].cameras[0].{key}" in text and hint in text


def test_camera_credentials_stay_references_until_the_edge_opens_the_stream(tmp_path, monkeypatch):
    monkeypatch.delenv("CAM_PASSWORD", raising=False)
    path = _write(tmp_path, "site: s\nedges:\n  - id: e1\n    cameras:\n      - id: c\n        url: rtsp://admin:${CAM_PASSWORD}@10.0.0.2/s\n")
    site = load_site_config(path)  # central loads the file without the edge's camera credentials
    camera = site.edges[0].cameras[0]
    assert camera.url == "rtsp://admin:${CAM_PASSWORD}@10.0.0.2/s"
    with pytest.raises(ConfigError) as err:
        site.edges[0].check_environment(path)
    (problem,) = err.value.problems
    assert "CAM_PASSWORD" in problem and "cameras[0].url" in problem and "export CAM_PASSWORD" in problem
    with pytest.raises(ConfigError):
        camera.stream_url()
    monkeypatch.setenv("CAM_PASSWORD", "s3cret")
    site.edges[0].check_environment(path)  # nothing missing: no error
    assert camera.stream_url() == "rtsp://admin:s3cret@10.0.0.2/s"
    assert "s3cret" not in load_site_config(path).model_dump_json()


def test_references_must_resolve(tmp_path):
    path = _write(tmp_path, "site: s\ngrid:\n  - {code: g1, name: G1, workers: [nobody]}\n")
    with pytest.raises(ConfigError) as err:
        load_site_config(path)
    assert "nobody" in str(err.value) and "workers:" in str(err.value)


def test_camera_rules_defaults_follow_the_design(tmp_path):
    path = _write(tmp_path, "zones:\n  - {id: lane, kind: fire_lane, polygon: [[0, 0], [1, 0], [1, 1]]}\n"
                            "  - {id: lift, kind: indoor, polygon: [[0, 0], [1, 0], [1, 1]]}\n")
    rules = load_camera_rules(path)
    lane, lift = rules.zones
    assert (lane.dwell_s, lane.clear_s, lane.realarm_s) == (120, 30, 300)
    assert (lift.dwell_s, lift.clear_s) == (2, 10)
    assert set(lane.labels) == {"car", "truck", "bus", "motorcycle"}
