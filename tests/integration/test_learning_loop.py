"""The learning loop end to end, with real parts: a real edge watching real lift footage over RTSP
with the real detector, Mosquitto, central; a monitor's box edit through the API; the export as a
dataset; Ultralytics training on it and the shared set (few epochs); the gate; promotion to the
camera; the edge loading the new model from the pushed configuration and reporting its sha256 in
its heartbeat and its events; false alarms per model in central's statistics; and the rollback."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.siteconfig import SiteConfig
from broker.topics import event_topic, status_topic
from tests.support import PROJECT_ROOT, SHARED_DIR, central_and_edge, wait_until

PASSWORD = "loop-admin-password"
LIFT = yaml.safe_load((PROJECT_ROOT / "configs" / "cameras" / "elevator.yaml").read_text())["zones"][0]


def _site(port: int, url: str) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": "loop", "broker": {"host": "127.0.0.1", "port": port},
        "edges": [{"id": "e1", "heartbeat_s": 1, "cameras": [
            {"id": "lift-1", "url": url, "detect_fps": 2, "grid_cell": "g1", "clips": False, "zones": [LIFT]}]}],
        "grid": [{"code": "g1", "name": "Grid 1", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "w1"}],
        "users": [{"username": "admin", "role": "admin", "password": PASSWORD}],
    })


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharpeyes", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=900, env=dict(os.environ))


@pytest.mark.timeout(900)
def test_reviews_train_a_model_that_is_promoted_to_the_camera_and_rolled_back(  # type: ignore[no-untyped-def]
        mosquitto, rtsp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARPEYES_MODEL_DIR", str(tmp_path / "models"))
    site = _site(mosquitto.port, rtsp_server.url("elevator_escooter_20s.mp4"))
    heard: queue.Queue[tuple[str, dict]] = queue.Queue()
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{uuid.uuid4().hex[:8]}")
    spy.on_message = lambda _c, _u, m: heard.put((m.topic, json.loads(m.payload)))
    spy.connect("127.0.0.1", mosquitto.port)
    spy.subscribe([(status_topic("loop", "e1"), 1), (event_topic("loop", "e1"), 1)])
    spy.loop_start()
    try:
        from central.workflow.config import WorkflowConfig

        triage = WorkflowConfig.model_validate({"hazards": {"ebike_indoor": {"auto_register_score": None}}})
        with central_and_edge(site, "e1", tmp_path, triage) as (central, _node), TestClient(central.app) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}).json()["access_token"]
            admin = {"Authorization": f"Bearer {token}"}

            def lift_incident() -> dict | None:
                for item in client.get("/api/v1/incidents", headers=admin).json()["items"]:
                    if item["hazard"] == "ebike_indoor":
                        labels = client.get(f"/api/v1/incidents/{item['id']}/labels", headers=admin)
                        detail = client.get(f"/api/v1/incidents/{item['id']}", headers=admin).json()
                        if labels.status_code == 200 and sum(e["available"] for e in detail["evidence"]) >= 2:
                            return {**item, "labels": labels.json()}
                return None

            incident = wait_until(lift_incident, 90, interval=1, what="an e-bike incident with its raw frame")
            confirmed = client.post(f"/api/v1/incidents/{incident['id']}/actions/confirm", json={}, headers=admin)
            assert confirmed.status_code == 200, confirmed.text
            # The monitor's box editor: the scooter the COCO model called a motorcycle is an e-bike.
            boxes = [{"label": "ebike" if b["label"] in ("motorcycle", "bicycle") else b["label"], "box": b["box"]}
                     for b in incident["labels"]["boxes"]]
            assert any(b["label"] == "ebike" for b in boxes)
            edited = client.put(f"/api/v1/incidents/{incident['id']}/labels", json={"boxes": boxes}, headers=admin)
            assert edited.status_code == 200, edited.text

            reviews = tmp_path / "reviews"
            exported = _run("central", "dataset", "export", "--out", str(reviews), "--database-url",
                            f"sqlite:///{tmp_path / 'central.db'}", "--evidence-dir", str(tmp_path / "evidence"))
            assert exported.returncode == 0, exported.stderr
            assert "1 pictures" in exported.stdout
            trained = _run("models", "train", "--data", str(SHARED_DIR / "datasets" / "ebike-elevator"), "--data",
                           str(reviews), "--name", "loop-ebike", "--epochs", "3", "--seed", "2", "--json")
            assert trained.returncode == 0, trained.stderr[-3000:]
            entry = json.loads(trained.stdout.strip().splitlines()[-1])
            assert any(name.startswith("lift-1_") for name in entry["trained"]["split"]["train"] + entry["trained"]["split"]["held_out"])

            gate = _run("models", "gate", "loop-ebike", "--no-fire-lanes", "--json")
            verdict = json.loads(gate.stdout.strip().splitlines()[-1])
            assert gate.returncode == 0 and verdict["passed"], verdict

            promoted = client.post("/api/v1/models/promote", json={"model": "loop-ebike", "camera": "lift-1"}, headers=admin)
            assert promoted.status_code == 200, promoted.text
            command_id = promoted.json()["changes"][0]["command_id"]

            def answered() -> dict | None:
                reply = client.get(f"/api/v1/commands/{command_id}", headers=admin).json()
                return reply if reply["status"] != "pending" else None

            reply = wait_until(answered, 30, what="the edge's reply to the pushed configuration")
            assert reply["status"] == "ok", reply

            def reported(kind: str) -> bool:
                while True:
                    try:
                        topic, payload = heard.get(timeout=1)
                    except queue.Empty:
                        return False
                    if kind == "heartbeat" and topic.endswith("/status") and payload.get("heartbeat"):
                        model = payload["heartbeat"]["cameras"].get("lift-1", {}).get("model") or {}
                        if model.get("sha256") == entry["sha256"]:
                            return True
                    if kind == "event" and topic.endswith("/event") and (payload.get("model") or {}).get("name") == "loop-ebike":
                        assert payload["model"]["sha256"] == entry["sha256"]
                        return True

            wait_until(lambda: reported("heartbeat"), 30, what="a heartbeat naming the new model's sha256")
            wait_until(lambda: reported("event"), 120, what="an event raised by the new model")

            stats = {m["model"]: m for m in client.get("/api/v1/stats/models", headers=admin).json()}
            assert (stats["yolov8n"]["confirmed"], stats["yolov8n"]["dismissed"]) == (1, 0)

            back = client.post("/api/v1/models/rollback", json={"camera": "lift-1"}, headers=admin)
            assert back.status_code == 200 and back.json()["changes"][0]["to_model"] == "yolov8n", back.text
            models = client.get("/api/v1/models", headers=admin).json()
            lift = next(c for c in models["cameras"] if c["camera"] == "lift-1")
            assert lift["model"] == "yolov8n" and [h["action"] for h in lift["history"]] == ["rollback", "promote"]
    finally:
        spy.loop_stop()
        spy.disconnect()
