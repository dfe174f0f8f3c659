"""`sharpeyes models train` on the shared e-bike set, and the trained model used by name.

Real parts: Ultralytics training on CPU (two short epochs at 320 px so the suite stays quick; the
default command's figures are in docs/models.md), the base rebuilt from ../shared/models'
yolov8n.onnx, the shared labelled set, the edge's own detector and `edge replay` on real footage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from models.evaluation import load_dataset
from models.registry import sha256_file
from tests.support import PROJECT_ROOT, SHARED_DIR

DATA = SHARED_DIR / "datasets" / "ebike-elevator"
MEDIA = SHARED_DIR / "media"
# Quick (2 epochs at 320 px): it finds more held-out e-bikes than its base, and at 320 px loses the
# street clip's small cars, which the gate must see.
QUICK = ["--epochs", "2", "--imgsz", "320", "--seed", "1", "--json"]


def _train(store: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHARPEYES_MODEL_DIR": str(store)}
    return subprocess.run([sys.executable, "-m", "sharpeyes", "models", "train", "--data", str(DATA), "--name", name,
                           *QUICK, *extra], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("model-store")
    saved = os.environ.get("SHARPEYES_MODEL_DIR")
    os.environ["SHARPEYES_MODEL_DIR"] = str(path)  # this process resolves the trained model by name too
    yield path
    if saved is None:
        os.environ.pop("SHARPEYES_MODEL_DIR", None)
    else:
        os.environ["SHARPEYES_MODEL_DIR"] = saved


@pytest.fixture(scope="module")
def trained(store: Path) -> dict:
    result = _train(store, "lift-ebike")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 2/2" in result.stderr and "registered lift-ebike" in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_registers_an_onnx_model_with_its_provenance(store: Path, trained: dict) -> None:
    from models.gate_figures import manifest_hash
    from models.registry import load_registry

    onnx = store / trained["file"]
    assert trained["sha256"] == sha256_file(onnx) and trained["decoder"] == "yolov8"
    names = (store / trained["classes"]).read_text().split("\n")
    assert names[0] == "person" and "car" in names and names[80] == "ebike"
    record = trained["trained"]
    assert record["base"] == "yolov8n" and "rebuilt from yolov8n.onnx" in record["base_verified"]
    assert record["dataset_manifest_sha256"] == manifest_hash(load_dataset(DATA))
    assert record["settings"]["seed"] == 1 and record["settings"]["epochs"] == 2
    train, held = set(record["split"]["train"]), set(record["split"]["held_out"])
    assert not train & held and len(train | held) == len(list((DATA / "images").glob("*.jpg")))
    same_scene = {"Snipaste_2024-01-01_12-10-05.jpg", "Snipaste_2024-01-02_10-32-52.jpg"}
    assert same_scene <= train or same_scene <= held
    assert record["rehearsal_pictures"] > 0  # vehicles rehearsed from the shared footage
    for figures in (record["figures"], record["base_figures"]):
        (hazard,) = figures["held_out"]["hazards"]
        assert hazard["labelled"] > 0 and 0 <= hazard["recall"] <= 1 and figures["vehicle_reference_boxes"] > 20
    assert record["base_figures"]["model"] == "yolov8n" and record["base_figures"]["vehicle_agreement"] == 1.0
    # The model's own e-bike class is what counts for it (a motorcycle box is no e-bike any more).
    assert record["figures"]["held_out"]["hazards"][0]["model_labels"] == ["ebike"]
    # Every other registered model is measured on the same pictures now, so central's gate only reads.
    others = record["other_figures"]
    assert set(others) == {"yolov8n_int8", "yolox_nano"} and record["unmeasured"] == {}
    for name, figures in others.items():
        assert figures["sha256"] == load_registry().get(name).sha256 and figures["vehicle_reference_boxes"] > 20


def test_the_trained_model_runs_by_name_in_the_edge(store: Path, trained: dict) -> None:
    from models.detector import load_detector

    detector = load_detector("lift-ebike", score_threshold=0.05, intra_op_threads=1)
    assert detector.class_names[-1] == "ebike" and detector.model_sha256 == trained["sha256"]
    capture = cv2.VideoCapture(str(MEDIA / "street_parked_cars_720p.mp4"))
    ok, frame = capture.read()
    capture.release()
    assert ok
    # A 16:9 frame: the export is re-anchored to 640x384 (models/reanchor.py) like the published one.
    found = detector.detect(frame, 640)
    assert detector.input_size_for(1280, 720, 640) == (640, 384)  # type: ignore[attr-defined]
    assert any(d.label == "car" for d in found)


def test_replay_with_the_trained_model_named_in_the_camera_config(store: Path, trained: dict, tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "configs" / "cameras" / "elevator.yaml").read_text())
    config["model"] = "lift-ebike"
    path = tmp_path / "elevator.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "sharpeyes", "edge", "replay", str(MEDIA / "elevator_escooter_20s.mp4"),
                             "--camera-config", str(path)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "detector lift-ebike loaded" in result.stderr
    for line in result.stdout.splitlines():
        assert json.loads(line)["model"]["name"] == "lift-ebike"


def test_the_same_seed_trains_the_same_model(store: Path, trained: dict) -> None:
    again = _train(store, "lift-ebike-again")
    assert again.returncode == 0, again.stderr[-3000:]
    entry = json.loads(again.stdout.strip().splitlines()[-1])
    assert entry["sha256"] == trained["sha256"]
    # A model trained here before is one of the models it may replace: measured too.
    assert entry["trained"]["other_figures"]["lift-ebike"]["sha256"] == trained["sha256"]


def test_keep_coco_trains_the_ebike_row_and_leaves_every_coco_output_alone(store: Path, trained: dict) -> None:
    import numpy as np

    from models.detector import load_detector

    result = _train(store, "lift-ebike-keep", "--keep-coco", "--epochs", "1", "--imgsz", "640")  # the base's input size
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout.strip().splitlines()[-1])["trained"]
    assert record["figures"]["vehicle_agreement"] == 1.0  # fire lanes cannot regress
    base = load_detector("yolov8n", score_threshold=0.3, intra_op_threads=1)
    kept = load_detector("lift-ebike-keep", score_threshold=0.3, intra_op_threads=1)
    image = cv2.imread(str(MEDIA / "city_street.png"))
    before = sorted((d.label, round(d.score, 2)) for d in base.detect(image))
    after = sorted((d.label, round(d.score, 2)) for d in kept.detect(image) if d.label != "ebike")
    assert len(before) > 10 and np.allclose([s for _, s in before], [s for _, s in after], atol=0.02)
    assert [label for label, _ in before] == [label for label, _ in after]


def test_bad_requests_are_refused_with_the_fix(store: Path, trained: dict, tmp_path: Path) -> None:
    taken = _train(store, "lift-ebike")
    assert taken.returncode == 2 and "registered already; choose another --name" in taken.stdout
    (tmp_path / "images").mkdir()
    (tmp_path / "data.yaml").write_text("names: {0: person}\n")
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), cv2.imread(str(MEDIA / "zidane.jpg")))
    env = {**os.environ, "SHARPEYES_MODEL_DIR": str(store)}
    no_ebike = subprocess.run([sys.executable, "-m", "sharpeyes", "models", "train", "--data", str(tmp_path), "--name", "x"],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert no_ebike.returncode == 2 and "no ebike class" in no_ebike.stdout


SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def _site_with_a_lift_and_a_fire_lane():  # type: ignore[no-untyped-def]
    from broker.siteconfig import parse_site_config
    from tests.central.factories import EDGE, SITE, WF_PASSWORD

    return parse_site_config({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": 1883},
        "edges": [{"id": EDGE, "cameras": [
            {"id": "lift-1", "url": "rtsp://127.0.0.1/a", "zones": [{"id": "car", "kind": "indoor", "polygon": SQUARE}]},
            {"id": "lane-1", "url": "rtsp://127.0.0.1/b", "zones": [{"id": "lane", "kind": "fire_lane", "polygon": SQUARE}]},
        ]}],
        "users": [{"username": "admin", "role": "admin", "password": WF_PASSWORD},
                  {"username": "monitor", "role": "monitor", "password": WF_PASSWORD}],
    })


def test_central_promotes_through_the_gate_and_rolls_back(store: Path, trained: dict, database_url: str,
                                                          tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from central.server import build_central
    from tests.central.factories import WF_PASSWORD

    built = build_central(_site_with_a_lift_and_a_fire_lane(), database_url, tmp_path / "evidence", tmp_path / "var",
                          ingest=False)
    try:
        with TestClient(built.app) as client:
            def headers(user: str) -> dict[str, str]:
                token = client.post("/api/v1/auth/token", data={"username": user, "password": WF_PASSWORD})
                return {"Authorization": f"Bearer {token.json()['access_token']}"}

            admin = headers("admin")
            assert client.post("/api/v1/models/promote", json={"model": "lift-ebike", "camera": "lift-1"},
                               headers=headers("monitor")).status_code == 403
            # The quick model finds more held-out e-bikes than yolov8n but loses cars: fine for a lift,
            # refused for a fire lane, and the refusal names the figure.
            refused = client.post("/api/v1/models/promote", json={"model": "lift-ebike", "zone_kind": "fire_lane"},
                                  headers=admin)
            assert refused.status_code == 409, refused.text
            assert any("vehicle agreement on the street clip" in f for f in refused.json()["detail"]["failures"])
            record = trained["trained"]
            assert record["figures"]["held_out"]["hazards"][0]["recall"] >= \
                record["base_figures"]["held_out"]["hazards"][0]["recall"]  # what lets the lift promotion pass
            done = client.post("/api/v1/models/promote", json={"model": "lift-ebike", "camera": "lift-1",
                                                               "reason": "fewer missed e-bikes"}, headers=admin)
            assert done.status_code == 200, done.text
            (change,) = done.json()["changes"]
            assert (change["from_model"], change["to_model"], change["to_sha256"]) == ("yolov8n", "lift-ebike", trained["sha256"])
            command = client.get(f"/api/v1/commands/{change['command_id']}", headers=admin).json()
            assert command["name"] == "config" and command["edge"] == change["edge"]  # the edge's configuration, pushed
            assert built.ctx.site.camera("lift-1")[1].model == "lift-ebike"
            models = client.get("/api/v1/models", headers=admin).json()
            lift = next(c for c in models["cameras"] if c["camera"] == "lift-1")
            assert lift["model"] == "lift-ebike" and lift["history"][0]["actor"] == "admin"
            assert next(c for c in models["cameras"] if c["camera"] == "lane-1")["model"] == "yolov8n"
            assert any(m["name"] == "lift-ebike" and m["trained"] for m in models["models"])
            back = client.post("/api/v1/models/rollback", json={"camera": "lift-1"}, headers=admin)
            assert back.status_code == 200, back.text
            assert back.json()["changes"][0]["to_model"] == "yolov8n"
            models = client.get("/api/v1/models", headers=admin).json()
            assert next(c for c in models["cameras"] if c["camera"] == "lift-1")["model"] == "yolov8n"
            assert client.post("/api/v1/models/rollback", json={"camera": "lane-1"}, headers=admin).status_code == 409
    finally:
        built.close()
