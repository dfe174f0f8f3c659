"""A zone push reaches one edge as that edge's own configuration and nothing else: asserted on the
MQTT payload a real Mosquitto carried, on the commands table and GET /commands/{id}, and on the
real edge node (watching real footage over RTSP) that resolved its camera's credentials itself."""

from __future__ import annotations

import json
import queue
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.siteconfig import SiteConfig
from broker.topics import command_topic
from central.store.tables import CommandRow
from tests.support import central_and_edge, wait_until

LANE = {"id": "kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
        "dwell_s": 600}
SECRETS = {"CAM_A_PASSWORD": "cam-a-s3cret", "E2_CAM_PASSWORD": "e2-literal-secret",
           "PW_ADMIN": "admin-password-long", "PW_WORKER": "worker-password-long"}


def _site(port: int, rtsp_base: str) -> SiteConfig:
    host_and_path = rtsp_base.removeprefix("rtsp://")
    return SiteConfig.model_validate({
        "site": "sec",
        "broker": {"host": "127.0.0.1", "port": port},
        "edges": [
            {"id": "e1", "cameras": [{"id": "cam-a", "url": f"rtsp://viewer:${{CAM_A_PASSWORD}}@{host_and_path}",
                                      "detect_fps": 1, "grid_cell": "g1", "zones": [LANE], "clips": False}]},
            {"id": "e2", "cameras": [{"id": "cam-b", "url": "rtsp://admin:${E2_CAM_PASSWORD}@10.0.0.9/ch1",
                                      "grid_cell": "g1"}]},
        ],
        "grid": [{"code": "g1", "name": "Grid 1", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "王芳", "phone": "13812345678"}],
        "users": [{"username": "admin", "role": "admin", "password_env": "PW_ADMIN"},
                  {"username": "wang", "role": "grid_worker", "worker": "w1", "password_env": "PW_WORKER"}],
    })


@pytest.mark.timeout(120)
def test_zone_push_carries_only_that_edges_configuration(mosquitto, rtsp_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    site = _site(mosquitto.port, rtsp_server.url("street_parked_cars_720p.mp4"))
    carried: queue.Queue[bytes] = queue.Queue()
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{uuid.uuid4().hex[:8]}")
    spy.on_message = lambda _c, _u, message: carried.put(message.payload)
    spy.connect("127.0.0.1", mosquitto.port)
    spy.subscribe(command_topic("sec", "e1", "config"), qos=1)
    spy.loop_start()
    try:
        with central_and_edge(site, "e1", tmp_path) as (central, node), TestClient(central.app) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": SECRETS["PW_ADMIN"]})
            admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
            lane = {**LANE, "dwell_s": 45}
            pushed = client.put("/api/v1/cameras/cam-a/zones", json={"zones": [lane]}, headers=admin)
            assert pushed.status_code == 202, pushed.text
            command_id = pushed.json()["command_id"]

            payload = carried.get(timeout=20)
            text = payload.decode()
            for secret in [*SECRETS.values(), "e2-literal-secret", "13812345678", "王芳"]:
                assert secret not in text, f"{secret!r} travelled to the edge"
            message = json.loads(text)["args"]["edge_config"]
            assert set(message) == {"schema_version", "site", "version", "edge"}
            assert (message["schema_version"], message["site"], message["edge"]["id"]) == (1, "sec", "e1")
            assert [c["id"] for c in message["edge"]["cameras"]] == ["cam-a"]
            assert message["edge"]["cameras"][0]["url"].startswith("rtsp://viewer:${CAM_A_PASSWORD}@")
            for absent in ("users", "workers", "grid", "broker", "edges"):
                assert absent not in json.dumps(list(message)) and absent not in message["edge"]

            def replied() -> dict | None:
                res = client.get(f"/api/v1/commands/{command_id}", headers=admin).json()
                return res if res["status"] != "pending" else None

            reply = wait_until(replied, 60, what="the edge's reply to the config command")
            assert reply["status"] == "ok", reply
            assert reply["result"]["version"] == message["version"] and reply["result"]["cameras"] == ["cam-a"]
            assert "args" not in reply
            with central.ctx.sessions() as session:
                stored = json.dumps(session.get(CommandRow, command_id).args)
            assert stored == json.dumps({"edge_config": message}) and "cam-a-s3cret" not in stored
            worker = node.worker("cam-a")
            assert worker is not None and worker.camera.zones[0].dwell_s == 45
            # The edge filled its camera's credentials from its own environment.
            street = rtsp_server.url("street_parked_cars_720p.mp4")
            assert worker.reader.url == street.replace("rtsp://", "rtsp://viewer:cam-a-s3cret@")
    finally:
        spy.loop_stop()
        spy.disconnect()
