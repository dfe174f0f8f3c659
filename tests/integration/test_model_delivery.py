"""Issue 26's model delivery with real parts: a `central serve` process holding a model store of its
own, Mosquitto, the RTSP footage server, and a real `sharpeyes edge run` process that runs from
another directory with an empty model store and no shared folder, reaching central only over HTTP
(through tests/integration/faulty_proxy.py, which cuts one download and corrupts another).

The edge downloads yolov8n (resuming the cut transfer with a Range request), runs it; a model
"trained" at central (a copy of the yolov8n export with one more metadata entry, so other bytes and
another sha256, registered with a training record as tests/models/test_gate_figures.py does, to
avoid minutes of training) is promoted, downloaded, run, and rolled back without another download;
a third one arrives corrupted and is refused while the camera keeps running the model it ran."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import onnx
import paho.mqtt.client as mqtt
import pytest
import yaml

from models.registry import LocalStore, ModelEntry, load_registry, save_store
from tests.integration.faulty_proxy import FaultyProxy
from tests.support import SHARED_DIR, start_central, stop_process, wait_until

YOLOV8N = load_registry().get("yolov8n").sha256
LANE = {"id": "kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
        "dwell_s": 600}


def _figures(model: str, sha256: str, recall: float) -> dict[str, Any]:
    return {"model": model, "sha256": sha256, "vehicle_agreement": 1.0, "vehicle_reference_boxes": 30,
            "held_out": {"hazards": [{"hazard_class": "ebike", "recall": recall, "false_boxes_per_image": 0.0}]}}


def _central_store(folder: Path, names: list[str]) -> dict[str, str]:
    """Central's own model store ($SHARPEYES_MODEL_DIR) with NAMES "trained" (distinct bytes each);
    their sha256 by name."""
    folder.mkdir()
    shutil.copy(SHARED_DIR / "models" / "coco80.names", folder / "trained.names")
    entries, shas = [], {}
    for name in names:
        model = onnx.load(str(SHARED_DIR / "models" / "yolov8n.onnx"))
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "trained_as": name})
        onnx.save(model, str(folder / f"{name}.onnx"))
        sha = hashlib.sha256((folder / f"{name}.onnx").read_bytes()).hexdigest()
        shas[name] = sha
        record = {"base": "yolov8n", "figures": _figures(name, sha, 1.0), "base_figures": _figures("yolov8n", YOLOV8N, 0.5),
                  "other_figures": {}, "unmeasured": {}, "split": {"train": [], "held_out": ["a.jpg"], "groups": 0}}
        entries.append(ModelEntry(name=name, file=f"{name}.onnx", sha256=sha, input_size=(640, 640), decoder="yolov8",
                                  color="rgb", licence="test", classes="trained.names", providers="any", trained=record))
    names_sha = hashlib.sha256((folder / "trained.names").read_bytes()).hexdigest()
    save_store(LocalStore(models=entries, class_files={"trained.names": names_sha}))
    return shas


class Heartbeats:
    """The edge's retained status, newest first: what each camera runs, by its heartbeat."""

    def __init__(self, port: int, topic: str) -> None:
        self.latest: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hb-{os.getpid()}")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on(self, client: Any, userdata: Any, message: Any) -> None:
        status = json.loads(message.payload)
        if status.get("heartbeat"):
            with self._lock:
                self.latest = status["heartbeat"]["cameras"].get("street", {})

    def running(self, name: str, sha256: str) -> bool:
        with self._lock:
            camera = dict(self.latest)
        return camera.get("model") == {"name": name, "sha256": sha256} and camera.get("samples", 0) > 0

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(420)
def test_an_edge_elsewhere_fetches_runs_and_rolls_back_central_models(  # type: ignore[no-untyped-def]
        mosquitto, rtsp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARPEYES_MODEL_DIR", str(tmp_path / "central-models"))  # central's process inherits it
    shas = _central_store(tmp_path / "central-models", ["lift-v2", "lift-v3"])
    monkeypatch.setenv("PW_ADMIN", "admin-password-long")
    central_log, edge_log = tmp_path / "central.log", tmp_path / "edge.log"
    site: dict[str, Any] = {
        "site": "dl", "broker": {"host": "127.0.0.1", "port": mosquitto.port},
        "edges": [{"id": "e1", "heartbeat_s": 2, "cameras": [
            {"id": "street", "url": rtsp_server.url("street_parked_cars_720p.mp4"), "detect_fps": 2, "clips": False,
             "zones": [LANE]}]}],
        "users": [{"username": "admin", "role": "admin", "password_env": "PW_ADMIN"}],
    }
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    database = f"sqlite:///{tmp_path / 'central.db'}"
    central, base = start_central(["--config", str(tmp_path / "site.yaml"), "--database-url", database,
                                   "--evidence-dir", str(tmp_path / "evidence")], central_log)
    proxy = FaultyProxy(int(base.rsplit(":", 1)[1])).start()
    heartbeats = Heartbeats(mosquitto.port, "sharpeyes/v1/dl/e1/status")
    edge = None
    try:
        # The edge's own folder: its site file names central (through the proxy), its store is empty.
        edge_dir = tmp_path / "elsewhere"
        (edge_dir / "models").mkdir(parents=True)
        (edge_dir / "site.yaml").write_text(yaml.safe_dump({**site, "central": {"url": f"http://127.0.0.1:{proxy.port}"}}))
        minted = subprocess.run([sys.executable, "-m", "sharpeyes", "central", "edge-token", "e1", "--config",
                                 str(tmp_path / "site.yaml"), "--database-url", database],
                                capture_output=True, text=True, timeout=60)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        env = {**os.environ, "SHARPEYES_MODEL_DIR": str(edge_dir / "models"), "SHARPEYES_SHARED_MODEL_DIR": "",
               "SHARPEYES_EDGE_TOKEN": token, "PYTHONUNBUFFERED": "1"}
        # Proof that this edge has no model of its own: not in its store, no ../shared, nor models/weights.
        probe = subprocess.run([sys.executable, "-c", "from models.registry import resolve_model; resolve_model('yolov8n')"],
                               cwd=edge_dir, env=env, capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "ModelNotFound: yolov8n.onnx was not found" in probe.stderr, probe.stderr
        assert "shared" not in probe.stderr.rsplit("looked in:", 1)[1]

        proxy.cut_next(YOLOV8N, after=3_000_000)
        edge = subprocess.Popen([sys.executable, "-m", "sharpeyes", "edge", "run", "--config", "site.yaml", "--edge", "e1",
                                 "--outbox", "outbox.db"], cwd=edge_dir, env=env, stdout=edge_log.open("ab"),
                                stderr=subprocess.STDOUT)

        def logs() -> str:
            return f"\n--- edge ---\n{edge_log.read_text()[-4000:]}\n--- central ---\n{central_log.read_text()[-3000:]}"

        wait_until(lambda: heartbeats.running("yolov8n", YOLOV8N), 180, what="yolov8n running on the edge" + logs())
        first, second = proxy.seen(YOLOV8N)[:2]
        assert (first.range, first.cut_after) == (None, 3_000_000)
        assert second.range == "bytes=3000000-", "the second request resumes where the cut left the file"
        assert hashlib.sha256((edge_dir / "models" / "yolov8n.onnx").read_bytes()).hexdigest() == YOLOV8N
        assert not list((edge_dir / "models").glob("*.partial"))

        admin = {"Authorization": "Bearer " + httpx.post(f"{base}/api/v1/auth/token", data={
            "username": "admin", "password": "admin-password-long"}).json()["access_token"]}
        promoted = httpx.post(f"{base}/api/v1/models/promote", json={"model": "lift-v2", "camera": "street"},
                              headers=admin, timeout=60)
        assert promoted.status_code == 200, promoted.text
        wait_until(lambda: heartbeats.running("lift-v2", shas["lift-v2"]), 120, what="lift-v2 running" + logs())
        store = yaml.safe_load((edge_dir / "models" / "store.yaml").read_text())
        [entry] = store["models"]
        assert entry["name"] == "lift-v2" and entry["trained"]["figures"]["sha256"] == shas["lift-v2"]
        assert (edge_dir / "models" / "yolov8n.onnx").is_file()  # the previous model stays for a rollback

        fetched = len(proxy.requests)
        rolled = httpx.post(f"{base}/api/v1/models/rollback", json={"camera": "street"}, headers=admin, timeout=60)
        assert rolled.status_code == 200, rolled.text
        wait_until(lambda: heartbeats.running("yolov8n", YOLOV8N), 120, what="yolov8n running again" + logs())
        assert len(proxy.requests) == fetched, "a rollback to a model the edge holds downloads nothing"

        proxy.corrupt_next(shas["lift-v3"])
        bad = httpx.post(f"{base}/api/v1/models/promote", json={"model": "lift-v3", "camera": "street"},
                         headers=admin, timeout=60)
        assert bad.status_code == 200, bad.text
        command_id = bad.json()["changes"][0]["command_id"]

        def reply() -> dict[str, Any] | None:
            answer = httpx.get(f"{base}/api/v1/commands/{command_id}", headers=admin).json()
            return answer if answer["status"] != "pending" else None

        refused = wait_until(reply, 120, what="the edge's answer to lift-v3" + logs())
        assert refused["status"] == "error", refused
        assert [s.corrupted for s in proxy.seen(shas["lift-v3"])] == [True]
        [problem] = refused["errors"]
        assert "model lift-v3" in problem and "has sha256" in problem and "refused" in problem, problem
        assert not (edge_dir / "models" / f"{shas['lift-v3']}.onnx").exists()
        assert not list((edge_dir / "models").glob("*.partial"))
        heartbeats.latest = {}
        wait_until(lambda: heartbeats.running("yolov8n", YOLOV8N), 30, what="yolov8n still running" + logs())
        assert "fetched yolov8n.onnx" in edge_log.read_text()
    finally:
        heartbeats.close()
        if edge is not None:
            stop_process(edge)
        stop_process(central)
        proxy.stop()
    assert token not in central_log.read_text() + edge_log.read_text(), "the edge's token appears in a log"
