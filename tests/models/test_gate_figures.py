"""Central's promotion reads the gate's figures and never measures (models/promotion.py), and
`sharpeyes models gate CANDIDATE --against CURRENT` measures what is missing (models/gate_figures.py).

Quick: the candidate is a copy of the published yolov8n export registered with a training record
written here (its own figures stated, not trained for), on the shared e-bike set's first pictures;
the current model, yolox_nano, is measured for real by the command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.promotion import GateUnavailable, judge
from models.registry import LocalStore, ModelEntry, load_registry, load_store, save_store, sha256_file
from tests.support import PROJECT_ROOT, SHARED_DIR

DATA = SHARED_DIR / "datasets" / "ebike-elevator"
CANDIDATE = "gate-lift"
SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def _figures(model: str, recall: float, false_boxes: float, vehicles: float, sha256: str) -> dict[str, Any]:
    return {"model": model, "sha256": sha256, "vehicle_agreement": vehicles, "vehicle_reference_boxes": 30,
            "held_out": {"hazards": [{"hazard_class": "ebike", "recall": recall, "false_boxes_per_image": false_boxes}]}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model store holding CANDIDATE with its base's figures only (as if yolox_nano had been
    registered after it was trained)."""
    from models.gate_figures import load_sets, manifest_hash

    path = tmp_path / "store"
    path.mkdir()
    monkeypatch.setenv("SHARPEYES_MODEL_DIR", str(path))  # the subprocesses inherit it
    shutil.copy(SHARED_DIR / "models" / "yolov8n.onnx", path / f"{CANDIDATE}.onnx")
    shutil.copy(SHARED_DIR / "models" / "coco80.names", path / f"{CANDIDATE}.names")
    dataset, _ = load_sets([DATA])
    held_out = sorted(p.name for p in (DATA / "images").glob("*.jpg"))[:4]
    base_sha = load_registry().get("yolov8n").sha256
    record = {"base": "yolov8n", "dataset": [str(DATA)], "dataset_manifest_sha256": manifest_hash(dataset),
              "settings": {"conf": 0.35}, "split": {"train": [], "held_out": held_out, "groups": 0},
              "figures": _figures(CANDIDATE, 1.0, 0.0, 1.0, sha256_file(path / f"{CANDIDATE}.onnx")),
              "base_figures": _figures("yolov8n", 0.5, 0.2, 1.0, base_sha), "other_figures": {}, "unmeasured": {}}
    entry = ModelEntry(name=CANDIDATE, file=f"{CANDIDATE}.onnx", sha256=sha256_file(path / f"{CANDIDATE}.onnx"),
                       input_size=(640, 640), decoder="yolov8", color="rgb", licence="test", classes=f"{CANDIDATE}.names",
                       providers="any", trained=record)
    save_store(LocalStore(models=[entry], class_files={f"{CANDIDATE}.names": sha256_file(path / f"{CANDIDATE}.names")}))
    return path


def _gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharpeyes", "models", "gate", *args], cwd=PROJECT_ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_the_gate_reads_the_base_and_names_the_command_for_a_model_it_has_no_figures_of(store: Path) -> None:
    assert judge(CANDIDATE, "yolov8n", fire_lanes=False).passed  # the base: from the record
    with pytest.raises(GateUnavailable, match=f"run `sharpeyes models gate {CANDIDATE} --against yolox_nano`"):
        judge(CANDIDATE, "yolox_nano")
    # Figures stored for another file under the same name are no figures of this one.
    [entry] = load_store().models
    record = {**(entry.trained or {}), "other_figures": {"yolox_nano": _figures("yolox_nano", 0.5, 0.2, 0.9, "0" * 64)}}
    save_store(LocalStore(models=[entry.model_copy(update={"trained": record})], class_files=load_store().class_files))
    with pytest.raises(GateUnavailable, match="--against yolox_nano` to measure it"):
        judge(CANDIDATE, "yolox_nano")


def test_central_refuses_without_stored_figures_naming_the_command_and_passes_once_measured(
        store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    import models.detector
    from broker.siteconfig import parse_site_config
    from central.server import build_central
    from tests.central.factories import EDGE, SITE, WF_PASSWORD

    def no_detector_in_a_request(*args: object, **kwargs: object) -> None:
        raise AssertionError("central loaded a detector inside an API request")

    # Every ONNX measurement goes through load_detector: central's process must never reach it.
    monkeypatch.setattr(models.detector, "load_detector", no_detector_in_a_request)
    site = parse_site_config({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": 1883},
        "edges": [{"id": EDGE, "cameras": [{"id": "lift-1", "url": "rtsp://127.0.0.1/a", "model": "yolox_nano",
                                            "zones": [{"id": "car", "kind": "indoor", "polygon": SQUARE}]}]}],
        "users": [{"username": "admin", "role": "admin", "password": WF_PASSWORD}],
    })
    built = build_central(site, f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "evidence", tmp_path / "var",
                          ingest=False)
    try:
        with TestClient(built.app) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": WF_PASSWORD})
            admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
            body = {"model": CANDIDATE, "camera": "lift-1"}
            refused = client.post("/api/v1/models/promote", json=body, headers=admin)
            assert refused.status_code == 409, refused.text
            assert f"run `sharpeyes models gate {CANDIDATE} --against yolox_nano` to measure it" in refused.json()["detail"]

            measured = _gate(CANDIDATE, "--against", "yolox_nano", "--no-fire-lanes", "--json")
            assert measured.returncode == 0, measured.stdout + measured.stderr
            assert f"measured yolox_nano on {CANDIDATE}'s 4 held-out pictures" in measured.stderr
            verdict = json.loads(measured.stdout.strip().splitlines()[-1])
            assert verdict["passed"] and verdict["current"]["model"] == "yolox_nano"
            stored = (load_store().models[0].trained or {})["other_figures"]["yolox_nano"]
            assert stored["sha256"] == load_registry().get("yolox_nano").sha256 and stored["vehicle_reference_boxes"] > 0
            again = _gate(CANDIDATE, "--against", "yolox_nano", "--no-fire-lanes", "--json")
            assert again.returncode == 0 and "measured" not in again.stderr  # stored once, read after

            done = client.post("/api/v1/models/promote", json=body, headers=admin)
            assert done.status_code == 200, done.text
            assert done.json()["gate"][0]["current"] == verdict["current"]
            assert done.json()["changes"][0]["from_model"] == "yolox_nano"
    finally:
        built.close()


def test_a_model_that_will_not_load_at_training_time_is_recorded_with_the_reason(store: Path) -> None:
    from models.gate_figures import measure_others

    [entry] = load_store().models
    gone = entry.model_copy(update={"name": "gone", "file": "gone.onnx", "trained": None})
    save_store(LocalStore(models=[entry, gone], class_files=load_store().class_files))
    heard: list[str] = []
    figures, unmeasured = measure_others({"yolov8n", "yolov8n_int8", "yolox_nano", CANDIDATE}, None, [], 0.35, [],  # type: ignore[arg-type]
                                         None, heard.append)
    assert figures == {} and unmeasured["gone"].startswith("ModelNotFound: gone.onnx was not found")
    [said] = heard
    assert said.startswith("measured 0 other registered models") and said.endswith("(gone would not load)")
    record = {**(entry.trained or {}), "unmeasured": unmeasured}
    save_store(LocalStore(models=[entry.model_copy(update={"trained": record}), gone], class_files=load_store().class_files))
    with pytest.raises(GateUnavailable, match="it would not load when gate-lift was trained: ModelNotFound"):
        judge(CANDIDATE, "gone")
