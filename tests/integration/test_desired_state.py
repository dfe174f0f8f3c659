"""Desired and reported state on real parts: Mosquitto from the project's configuration, central
ingesting over it, and a real EdgeNode watching the street footage over RTSP.

An edge stopped while its zones change is restarted with its old site file: the broker hands it the
retained configuration on subscribing, it applies it and reports the version, and central's drift
list clears within one heartbeat of the reconnection, with nobody pushing again. Meanwhile the
list shows desired N against applied N-1 since version N was stored. A configuration the edge
refuses (a model it cannot load) is drift with the edge's own problems, until a restore clears it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from broker.siteconfig import SiteConfig
from central.server import build_central
from edge.node import EdgeNode
from tests.support import wait_until

HEARTBEAT_S = 5.0
LANE = {"id": "kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
        "dwell_s": 600}
PASSWORDS = {"PW_ADMIN": "admin-password-long", "PW_MONITOR": "monitor-password-long"}


def _site(port: int, street: str) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": "drift",
        "broker": {"host": "127.0.0.1", "port": port},
        "edges": [{"id": "e1", "heartbeat_s": HEARTBEAT_S,
                   "cameras": [{"id": "cam-a", "url": street, "detect_fps": 1, "grid_cell": "g1", "zones": [LANE],
                                "clips": False}]}],
        "grid": [{"code": "g1", "name": "Grid 1"}],
        "users": [{"username": "admin", "role": "admin", "password_env": "PW_ADMIN"},
                  {"username": "mon", "role": "monitor", "password_env": "PW_MONITOR"}],
    })


def _login(client: TestClient, user: str, password: str) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.mark.timeout(240)
def test_an_edge_away_while_its_zones_change_converges_on_reconnecting(  # type: ignore[no-untyped-def]
        mosquitto, rtsp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in PASSWORDS.items():
        monkeypatch.setenv(key, value)
    site = _site(mosquitto.port, rtsp_server.url("street_parked_cars_720p.mp4"))
    central = build_central(site, f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "evidence", tmp_path / "var",
                            client_id="drift-central")
    central.start_ingest()
    assert central.ingest is not None and central.ingest.wait_connected(10)
    outbox = tmp_path / "edge" / "outbox.db"
    node = EdgeNode(site, "e1", outbox)
    node.start()
    try:
        with TestClient(central.app) as client:
            admin, monitor = _login(client, "admin", PASSWORDS["PW_ADMIN"]), _login(client, "mon", PASSWORDS["PW_MONITOR"])

            def drift() -> dict[str, Any]:
                answer = client.get("/api/v1/edge-drift", headers=monitor)
                assert answer.status_code == 200, answer.text
                [row] = answer.json()
                return row

            def push(dwell_s: int) -> int:
                pushed = client.put("/api/v1/cameras/cam-a/zones", json={"zones": [{**LANE, "dwell_s": dwell_s}]},
                                    headers=admin)
                assert pushed.status_code == 202, pushed.text
                return int(pushed.json()["version"])

            # Online: the edge applies version 2 (1 is the site file's baseline) and says so.
            assert push(45) == 2
            synced = wait_until(lambda: (r := drift())["in_sync"] and r["applied_version"] == 2 and r, 60,
                                what="the edge to report version 2")
            assert synced["desired_version"] == 2 and synced["drift_since"] is None and synced["problems"] == []

            # Away: the edge stops; its zones change meanwhile.
            node.stop()
            assert push(90) == 3
            stored_at = client.get("/api/v1/edges/e1/config/versions/3", headers=admin).json()["at"]
            offline = ["edge offline: the broker hands it version 3 when it reconnects"]
            behind = wait_until(lambda: (r := drift())["problems"] == offline and r, 10, what="the edge offline")
            assert (behind["desired_version"], behind["applied_version"], behind["in_sync"]) == (3, 2, False)
            assert behind["drift_since"] == stored_at
            assert client.get("/api/v1/edge-drift?drifting=true", headers=monitor).json() == [behind]

            # Back, with its old site file (the zone at 600 s): nobody pushes; the broker has version 3.
            node = EdgeNode(site, "e1", outbox)
            node.start()
            connected = wait_until(lambda: node.publisher.connected and time.monotonic(), 30,
                                   what="the edge to reconnect")
            back = wait_until(lambda: (r := drift())["in_sync"] and r, 30, interval=0.05, what="the drift to clear")
            converged_s = time.monotonic() - connected
            print(f"converged {converged_s:.2f} s after reconnecting (heartbeat {HEARTBEAT_S} s)")
            assert converged_s <= HEARTBEAT_S, f"converged {converged_s:.1f} s after reconnecting"
            assert (back["desired_version"], back["applied_version"], back["drift_since"]) == (3, 3, None)
            assert back["applied_at"] is not None and back["problems"] == []
            worker = node.worker("cam-a")
            assert worker is not None and worker.camera.zones[0].dwell_s == 90
            assert client.get("/api/v1/edge-drift?drifting=true", headers=monitor).json() == []

            # Refused: a model this edge cannot load. The cameras keep running version 3.
            config = client.get("/api/v1/edges/e1/config/versions/3", headers=admin).json()["config"]
            config["cameras"][0]["model"] = "no-such-model"
            pushed = client.post("/api/v1/edges/e1/config", json={"edge": config}, headers=admin)
            assert pushed.status_code == 202, pushed.text
            refused = wait_until(lambda: (r := drift())["problems"] and "no-such-model" in r["problems"][0] and r,
                                 30, what="the refusal in the drift list")
            assert (refused["desired_version"], refused["applied_version"], refused["in_sync"]) == (4, 3, False)
            assert node.worker("cam-a").camera.model != "no-such-model"  # type: ignore[union-attr]

            # A restore of version 3 (as version 5) is what the edge runs: in sync, nothing restarted.
            restored = client.post("/api/v1/edges/e1/config/versions/3/restore", json={}, headers=admin)
            assert restored.status_code == 202, restored.text
            final = wait_until(lambda: (r := drift())["in_sync"] and r["applied_version"] == 5 and r, 30,
                               what="the restore to be reported")
            assert final["problems"] == [] and node.worker("cam-a") is worker
    finally:
        node.stop()
        central.close()


@pytest.mark.timeout(120)
def test_central_retains_every_desired_configuration_again_when_it_connects(  # type: ignore[no-untyped-def]
        mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker that lost its retained messages (no persistence, or killed before its autosave) gets
    them back from central's next connection: an edge connecting later still converges."""
    import json
    import queue
    import uuid

    from paho.mqtt import client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from broker.topics import config_topic
    from tests.retained import clear_retained_configs

    for key, value in PASSWORDS.items():
        monkeypatch.setenv(key, value)
    site = _site(mosquitto.port, "rtsp://127.0.0.1:9/none")
    database = f"sqlite:///{tmp_path / 'central.db'}"
    central = build_central(site, database, tmp_path / "evidence", tmp_path / "var", client_id="drift-a")
    central.start_ingest()
    try:
        assert central.ingest is not None and central.ingest.wait_connected(10)
        with TestClient(central.app) as client:
            admin = _login(client, "admin", PASSWORDS["PW_ADMIN"])
            pushed = client.put("/api/v1/cameras/cam-a/zones", json={"zones": [{**LANE, "dwell_s": 30}]}, headers=admin)
            assert pushed.status_code == 202, pushed.text
        wait_until(lambda: clear_retained_configs("127.0.0.1", mosquitto.port) == [config_topic("drift", "e1")], 10,
                   what="the retained configuration, then cleared as a broker that lost it")
    finally:
        central.close()

    again = build_central(site, database, tmp_path / "evidence", tmp_path / "var", client_id="drift-b")
    again.start_ingest()
    retained: queue.Queue[dict[str, Any]] = queue.Queue()
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{uuid.uuid4().hex[:8]}")
    spy.on_message = lambda _c, _u, m: retained.put(json.loads(m.payload)) if m.retain and m.payload else None
    try:
        assert again.ingest is not None and again.ingest.wait_connected(10)
        spy.connect("127.0.0.1", mosquitto.port)
        spy.loop_start()
        command = None
        for _ in range(15):  # a fresh subscription each time: only that is handed what the broker retains
            spy.subscribe(config_topic("drift", "e1"), qos=1)
            try:
                command = retained.get(timeout=1)
                break
            except queue.Empty:
                spy.unsubscribe(config_topic("drift", "e1"))
        assert command is not None, "central did not retain the configuration again"
        assert command["name"] == "config" and command["args"]["desired_version"] == 2
        assert command["command_id"] == pushed.json()["command_id"]
        assert command["args"]["edge_config"]["edge"]["cameras"][0]["zones"][0]["dwell_s"] == 30
    finally:
        spy.loop_stop()
        spy.disconnect()
        again.close()
