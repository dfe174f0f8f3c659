"""`sharpeyes models eval` on the shared labelled e-bike set (../shared/datasets/ebike-elevator):
figures for people, read back against the labels themselves; and the metric plumbing checked with
a detector that answers with the labels (a stand-in: no real model is perfect)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from broker.configbase import ConfigError
from models.detector import Detection
from models.evaluation import evaluate, load_dataset
from tests.support import PROJECT_ROOT, SHARED_DIR

DATA = SHARED_DIR / "datasets" / "ebike-elevator"


def _labels_per_class() -> dict[int, int]:
    counts: dict[int, int] = {}
    for label in (DATA / "labels").glob("*.txt"):
        for line in label.read_text().splitlines():
            if line.strip():
                counts[int(line.split()[0])] = counts.get(int(line.split()[0]), 0) + 1
    return counts


def test_eval_of_the_default_model_on_the_shared_set() -> None:
    if not DATA.is_dir():
        pytest.fail(f"{DATA} is missing: the shared datasets sit beside the checkout", pytrace=False)
    result = subprocess.run([sys.executable, "-m", "sharpeyes", "models", "eval", "--data", str(DATA), "--json"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ev = json.loads(result.stdout.strip().splitlines()[-1])
    labelled = _labels_per_class()
    assert ev["images"] == len(list((DATA / "images").iterdir())) and ev["conf"] == 0.35
    assert {c["name"]: c["labelled"] for c in ev["classes"]} == {"ebike": labelled[0], "person": labelled[1]}
    (ebike,) = ev["hazards"]
    assert ebike["model_labels"][:2] == ["motorcycle", "bicycle"] and ebike["labelled"] == labelled[0]
    assert ebike["recall"] == round(ebike["found"] / ebike["labelled"], 3)
    # COCO YOLOv8n on real elevator pictures: about half the e-bikes (the gap issue 13 is about).
    assert 0.3 <= ebike["recall"] <= 0.8 and 0 < ev["cpu_ms_per_image"]
    for c in ev["classes"]:
        assert 0 <= c["ap50_95"] <= c["ap50"] <= 1


@dataclass
class _AnswersWithTheLabels:
    """Stands in for a perfect detector (none exists) to check the metrics' plumbing."""

    dataset: object
    model_name: str = "labels"
    model_sha256: str = "0" * 64

    def detect(self, frame_bgr: np.ndarray, input_width: int | None = None) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
        item = next(i for i in self.dataset.images if i.path == self.current)
        names = {0: "motorcycle", 1: "person"}
        return [Detection(names[int(c)], int(c), 0.9, tuple(float(v) for v in box * [width, height, width, height]))
                for c, box in zip(item.classes, item.boxes, strict=True)]


def test_a_detector_that_finds_exactly_the_labels_scores_perfectly(monkeypatch) -> None:
    import cv2

    dataset = load_dataset(DATA)
    fake = _AnswersWithTheLabels(dataset)
    real_imread = cv2.imread

    def imread(path: str, *args):  # noqa: ANN202 - remembers which image the detector is shown
        fake.current = Path(path)
        return real_imread(path, *args)

    monkeypatch.setattr(cv2, "imread", imread)
    ev = evaluate(fake, dataset, conf=0.35)
    assert [(c.precision, c.recall, c.ap50) for c in ev.classes] == [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0)]
    (ebike,) = ev.hazards
    assert (ebike.recall, ebike.false_boxes_per_image, ebike.image_hit_rate) == (1.0, 0.0, 1.0)


def test_a_set_that_is_not_yolo_layout_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.yaml"):
        load_dataset(tmp_path)
    shutil.copytree(DATA, tmp_path / "set")
    label = next((tmp_path / "set" / "labels").glob("*.txt"))
    label.write_text("7 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_dataset(tmp_path / "set")
    assert err.value.path == str(label) and "line 1" in err.value.problems[0]


def test_a_model_given_as_a_file_is_measured_like_the_registered_one(tmp_path: Path) -> None:
    def run(model: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharpeyes", "models", "eval", "--model", model, "--data", str(DATA),
                               "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)

    by_name, by_file = run("yolov8n"), run(str(SHARED_DIR / "models" / "yolov8n.onnx"))
    assert by_name.returncode == 0 and by_file.returncode == 0, by_file.stdout + by_file.stderr
    named, filed = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (by_name, by_file))
    assert filed["model"] == "yolov8n" and filed["hazards"] == named["hazards"] and filed["classes"] == named["classes"]
    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_text("not a network")
    refused = run(str(not_a_model))
    assert refused.returncode == 2 and "not an ONNX model" in " ".join(refused.stdout.split())  # rich wraps lines
