"""A live edge on the real street stream: evidence (annotated snapshot, raw frame, MP4 clip),
the recheck and config commands, the heartbeat and the Prometheus endpoint."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import pytest

from broker.edgeconfig import edge_config_message
from broker.payloads import Command
from broker.siteconfig import parse_site_config
from edge.node import EdgeNode
from sharpeyes.rtsp_server import FootageServer
from tests.edge_live.support import Recorder, one_camera_site
from tests.support import wait_until

PARKED = {"id": "near-kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
          "dwell_s": 2, "clear_s": 30, "realarm_s": 600}
LANE = {"id": "driving-lane", "kind": "fire_lane", "polygon": [[0.25, 0.62], [0.80, 0.60], [0.80, 0.70], [0.25, 0.72]],
        "dwell_s": 2, "clear_s": 30, "realarm_s": 600}


@pytest.fixture(scope="module")
def street(shared_media: Path, tmp_path_factory):
    with FootageServer({"street.mp4": shared_media / "street_parked_cars_720p.mp4"},
                       workdir=tmp_path_factory.mktemp("rtsp")) as server:
        yield server


@pytest.fixture
def running(fresh_mosquitto, street, tmp_path):
    site = one_camera_site(fresh_mosquitto.port, street.url("street.mp4"), detect_fps=1, decode="all",
                           zones=[PARKED, LANE], clip_pre_s=2, clip_post_s=2)
    site.edges[0].metrics_port = 0
    site.edges[0].heartbeat_s = 2
    recorder = Recorder(fresh_mosquitto.port)
    node = EdgeNode(site, "e1", tmp_path / "var" / "outbox.db")
    node.start()
    yield site, node, recorder
    node.stop()
    recorder.close()


def _command(recorder: Recorder, name: str, args: dict) -> dict:
    command = Command(command_id=uuid.uuid4(), name=name, args=args, sent_at=datetime.now(UTC))
    recorder.client.publish(f"sharpeyes/v1/t/e1/cmd/{name}", command.model_dump_json(by_alias=True), qos=1)

    def reply():
        return [b for t, b in recorder.messages if t == f"sharpeyes/v1/t/e1/cmd/{name}/reply"
                and b["command_id"] == str(command.command_id)]

    return wait_until(reply, 30, what=f"{name} reply")[0]


@pytest.mark.timeout(120)
def test_episode_evidence_is_snapshot_raw_frame_and_a_clip(running):
    _, _, recorder = running
    start = wait_until(lambda: [e for e in recorder.events("fire_lane_blocked") if e["phase"] == "start"], 60,
                       what="fire lane start")[0]
    assert start["zone"] == "near-kerb"
    assert [e["content_type"] for e in start["evidence"]] == ["image/jpeg", "image/jpeg"]
    for ref in start["evidence"]:
        data = wait_until(lambda ref=ref: recorder.blob(ref["sha256"]), 10, what="evidence blob")
        assert hashlib.sha256(data).hexdigest() == ref["sha256"] and len(data) == ref["bytes"]

    clip_update = wait_until(
        lambda: [e for e in recorder.events("fire_lane_blocked")
                 if e["incident_key"] == start["incident_key"] and e["phase"] == "update"
                 and e["evidence"] and e["evidence"][0]["content_type"] == "video/mp4"], 30, what="clip update")[0]
    ref = clip_update["evidence"][0]
    clip = wait_until(lambda: recorder.blob(ref["sha256"]), 10, what="clip blob")
    assert hashlib.sha256(clip).hexdigest() == ref["sha256"]
    path = Path(running[1].state_dir) / "clip.mp4"
    path.write_bytes(clip)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height) == (1280, 720)
    assert frames >= 30  # about 4 s of a 15 fps camera, copied not re-encoded
    assert not any(e["zone"] == "driving-lane" for e in recorder.events())


@pytest.mark.timeout(120)
def test_recheck_reports_presence_per_zone_with_a_fresh_snapshot(running):
    _, _, recorder = running
    wait_until(lambda: "online" in recorder.health(), 30, what="camera online")
    parked = _command(recorder, "recheck", {"camera": "cam", "zone": "near-kerb"})
    assert parked["ok"] and parked["result"]["present"] is True
    assert parked["result"]["hazard"] == "fire_lane_blocked" and len(parked["result"]["objects"]) >= 2
    snapshot = wait_until(lambda: recorder.blob(parked["result"]["snapshot_sha256"]), 10, what="recheck snapshot")
    assert snapshot[:2] == b"\xff\xd8"

    lane = _command(recorder, "recheck", {"camera": "cam", "zone": "driving-lane"})
    assert lane["ok"] and lane["result"]["present"] is False

    unknown = _command(recorder, "recheck", {"camera": "cam", "zone": "nowhere"})
    assert not unknown["ok"] and "nowhere" in unknown["errors"][0]


@pytest.mark.timeout(120)
def test_config_command_applies_valid_config_and_refuses_bad_zones(running):
    site, node, recorder = running
    wait_until(lambda: "online" in recorder.health(), 30, what="camera online")
    data = site.model_dump(mode="json")
    data["edges"][0]["cameras"][0]["zones"] = [PARKED]  # drop the lane zone
    edge_id = data["edges"][0]["id"]
    message = edge_config_message(parse_site_config(data), edge_id).model_dump(mode="json")
    applied = _command(recorder, "config", {"edge_config": message})
    assert applied["ok"] and applied["result"]["cameras"] == ["cam"]
    assert node.config_version == applied["result"]["version"] == message["version"]
    assert [z.id for z in node.workers[0].camera.zones] == ["near-kerb"]

    bad = json.loads(json.dumps(message))
    bad["edge"]["cameras"][0]["zones"][0]["polygon"] = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    refused = _command(recorder, "config", {"edge_config": bad})
    assert not refused["ok"]
    assert "edge.cameras[0].zones[0].polygon" in refused["errors"][0] and "cross" in refused["errors"][0]
    # A whole site configuration is no longer accepted: it would carry other edges and central's people.
    old_style = _command(recorder, "config", {"site_config": data})
    assert not old_style["ok"] and "edge_config" in old_style["errors"][0]
    # A camera whose credentials this edge's environment lacks is refused, naming the variable.
    missing = json.loads(json.dumps(data))
    missing["edges"][0]["cameras"][0]["url"] = "rtsp://viewer:${SHARPEYES_TEST_NO_SUCH_VAR}@127.0.0.1/x"
    unresolved = _command(recorder, "config", {"edge_config": edge_config_message(parse_site_config(missing), edge_id)
                                               .model_dump(mode="json")})
    assert not unresolved["ok"] and "SHARPEYES_TEST_NO_SUCH_VAR" in unresolved["errors"][0]
    assert node.config_version == applied["result"]["version"], "a refused config changes nothing"


@pytest.mark.timeout(120)
def test_heartbeat_and_metrics(running):
    _, node, recorder = running

    def beat():
        return [b for t, b in recorder.messages if t.endswith("/status") and b.get("heartbeat")
                and b["heartbeat"]["cameras"]["cam"]["samples"] > 0]

    heartbeat = wait_until(beat, 30, what="heartbeat with samples")[-1]["heartbeat"]
    assert heartbeat["cameras"]["cam"]["state"] == "online" and heartbeat["cameras"]["cam"]["frames_decoded"] > 0
    text = httpx.get(f"http://127.0.0.1:{node.metrics_port}/metrics").text
    assert 'sharpeyes_edge_frames_in_total{camera="cam"}' in text
    assert 'sharpeyes_edge_camera_health{camera="cam",state="online"} 1.0' in text
    assert "sharpeyes_edge_outbox_bytes" in text and "sharpeyes_edge_inference_seconds_total" in text
