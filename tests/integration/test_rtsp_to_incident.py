"""The whole chain with real parts: RTSP footage -> edge (YOLOv8n, rules, outbox) -> Mosquitto
-> central (ingest, store) -> an incident with its snapshot in the API, and a task on the worker's topic.
Neither process's log holds a configured password, the camera's credentials, the token key or a token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.support import spawn_sharpeyes, start_central, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _site_config(tmp_path: Path, mqtt_port: int, street_url: str, elevator_url: str) -> Path:
    street = yaml.safe_load((ROOT / "configs/cameras/street-parked.yaml").read_text())
    elevator = yaml.safe_load((ROOT / "configs/cameras/elevator.yaml").read_text())
    for zone in street["zones"]:
        zone.update(dwell_s=4, clear_s=30, realarm_s=600)
    for zone in elevator["zones"]:
        zone.update(dwell_s=1, clear_s=10, realarm_s=600)
    site = {
        "site": "itest",
        "broker": {"host": "127.0.0.1", "port": mqtt_port, "protocol": "5"},
        "edges": [
            {
                "id": "edge-a",
                "cameras": [
                    # Camera credentials by reference: only the edge fills them in (the RTSP server on
                    # loopback asks for none, so they are sent nowhere and must be logged nowhere).
                    {"id": "street", "url": street_url.replace("rtsp://", "rtsp://viewer:${ITEST_CAMERA_PASSWORD}@"),
                     "detect_fps": 1, "grid_cell": "g1", "zones": street["zones"]},
                    {"id": "lift", "url": elevator_url, "detect_fps": 2, "grid_cell": "g2", "zones": elevator["zones"]},
                ],
            }
        ],
        "grid": [
            {"code": "c1", "name": "Community", "level": "community"},
            {"code": "g1", "name": "Grid 1", "parent": "c1", "workers": ["zhang-wei"]},
            {"code": "g2", "name": "Grid 2", "parent": "c1", "workers": ["li-na"]},
        ],
        "workers": [{"id": "zhang-wei", "name": "张伟"}, {"id": "li-na", "name": "李娜"}],
        "users": [{"username": "monitor", "role": "monitor", "password_env": "ITEST_MONITOR_PASSWORD"}],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True))
    return path


class TaskListener:
    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[dict] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="itest-worker-phone")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.client.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


SECRETS = {"ITEST_CAMERA_PASSWORD": "cam-pw-8d3f1a", "ITEST_MONITOR_PASSWORD": "monitor-pw-5e7c2b9",
           "SHARPEYES_JWT_SECRET": "jwt-key-" + "4b1d" * 10}


@pytest.mark.timeout(240)
def test_rtsp_stream_becomes_incident_with_snapshot_and_worker_task(mosquitto, rtsp_server, tmp_path, monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    config = _site_config(
        tmp_path, mosquitto.port, rtsp_server.url("street_parked_cars_720p.mp4"), rtsp_server.url("elevator_escooter_20s.mp4")
    )
    central_log, edge_log = tmp_path / "central.log", tmp_path / "edge.log"
    central, base = start_central(
        ["--config", str(config), "--database-url", f"sqlite:///{tmp_path}/central.db",
         "--evidence-dir", str(tmp_path / "evidence")],
        central_log,
    )
    tasks = TaskListener(mosquitto.port, "sharpeyes/v1/itest/worker/+/task")
    edge = None
    try:
        edge = spawn_sharpeyes(["edge", "run", "--config", str(config), "--edge", "edge-a", "--outbox",
                                str(tmp_path / "outbox.db")], edge_log)
        assert httpx.post(f"{base}/api/v1/auth/token", data={"username": "monitor", "password": "wrong"}).status_code == 401
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "monitor",
                                                              "password": SECRETS["ITEST_MONITOR_PASSWORD"]}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        found: dict[str, dict] = {}
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(found) < 2:
            for incident in httpx.get(f"{base}/api/v1/incidents", headers=headers).json()["items"]:
                found.setdefault(incident["hazard"], incident)
            time.sleep(1)
        assert set(found) == {"fire_lane_blocked", "ebike_indoor"}, (
            f"incidents seen: {list(found)}\n--- edge log ---\n{edge_log.read_text()[-3000:]}"
            f"\n--- central log ---\n{central_log.read_text()[-3000:]}"
        )

        fire = httpx.get(f"{base}/api/v1/incidents/{found['fire_lane_blocked']['id']}", headers=headers).json()
        assert fire["camera"] == "street" and fire["grid_cell"] == "g1"
        sha = fire["latest_snapshot_sha256"]
        image = httpx.get(f"{base}/api/v1/evidence/{sha}", headers=headers)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8"
        # Its parked cars' plates are blurred: the edge's vehicle boxes ride in the event.
        assert image.headers["x-redaction"].startswith("faces=") and "plates=0" not in image.headers["x-redaction"]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and {m["worker"] for m in tasks.messages} != {"zhang-wei", "li-na"}:
            time.sleep(0.5)
        by_worker = {m["worker"]: m for m in tasks.messages}
        assert by_worker["zhang-wei"]["hazard"] == "fire_lane_blocked"
        assert by_worker["li-na"]["hazard"] == "ebike_indoor"
    finally:
        tasks.close()
        if edge is not None:
            stop_process(edge)
        stop_process(central)
    logs = central_log.read_text(errors="replace") + edge_log.read_text(errors="replace")
    for name, secret in [*SECRETS.items(), ("a bearer token", token)]:
        assert secret not in logs, f"{name} appears in a log"
