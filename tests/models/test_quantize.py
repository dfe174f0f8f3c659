"""`sharpeyes models quantize`: a static INT8 copy of yolov8n is an ordinary registered model that
the detector loads by name, fits to a portrait lift stream like its source, and that still finds
what the fp32 model finds on real frames (models/quantize.py). Real weights from ../shared/models,
calibrated on the shared lift clips; no timing is asserted (`sharpeyes bench int8` measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detector import Detection, load_detector
from models.quantize import QuantizeError, QuantizeSettings, quantize
from models.registry import load_registry, sha256_file
from tests.support import PROJECT_ROOT, SHARED_DIR

MEDIA = SHARED_DIR / "media"
NAME = "lift-int8"


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh model store with yolov8n quantized into it by the command, as a user runs it."""
    path = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHARPEYES_MODEL_DIR", str(path))
        done = subprocess.run(
            [sys.executable, "-m", "sharpeyes", "models", "quantize", "yolov8n", "--name", NAME, "--json",
             "--calibration", str(MEDIA / "elevator_escooter_20s.mp4"), "--calibration", str(MEDIA / "elevator_ebike_cctv_20s.mp4"),
             "--max-frames", "24"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env={**os.environ})
        assert done.returncode == 0, done.stderr[-3000:]
        entry = json.loads(done.stdout.strip().splitlines()[-1])
        assert entry["name"] == NAME
        yield path


def test_the_quantized_model_is_registered_with_its_origin(store: Path) -> None:
    entry = load_registry().get(NAME)
    assert entry.file == f"{NAME}.onnx" and (store / entry.file).is_file()
    assert entry.sha256 == sha256_file(store / entry.file)
    assert (entry.decoder, entry.input_size, entry.classes, entry.providers) == ("yolov8", (640, 640), "coco80.names", "cpu")
    record = (entry.trained or {})["quantized"]
    assert record["from"] == "yolov8n" and record["from_sha256"] == load_registry().get("yolov8n").sha256
    assert record["calibration"]["frames"] == 24 and record["activations"] == "QUInt8"
    assert record["float_nodes"] > 0  # the head's DFL / anchor tail stays float
    assert record["agreement"]["street_clip"]["recall_of_source"] >= 0.7
    # about a quarter of the fp32 file's size: the weights are 8-bit
    assert (store / entry.file).stat().st_size < 0.35 * (SHARED_DIR / "models" / "yolov8n.onnx").stat().st_size


def _best(detections: list[Detection], labels: set[str]) -> Detection:
    found = [d for d in detections if d.label in labels and d.score >= 0.35]
    assert found, f"no {labels} at 0.35 in {[(d.label, round(d.score, 2)) for d in detections]}"
    return found[0]


def test_it_finds_the_escooter_on_a_portrait_lift_stream_like_fp32(store: Path) -> None:
    image = cv2.imread(str(MEDIA / "elevator_escooter.jpg"))
    portrait = cv2.resize(image, (408, 576), interpolation=cv2.INTER_AREA)  # the lift sub-stream's shape
    fp32 = load_detector("yolov8n", intra_op_threads=1)
    int8 = load_detector(NAME, intra_op_threads=1)
    assert int8.model_name == NAME and int8.model_sha256 == load_registry().get(NAME).sha256
    for frame in (image, portrait):
        a, b = _best(fp32.detect(frame, 640), {"motorcycle"}), _best(int8.detect(frame, 640), {"motorcycle"})
        assert _iou(a.box, b.box) >= 0.8
        assert abs(a.score - b.score) <= 0.15
    assert int8.input_size_for(408, 576, 640) == (480, 640)  # fitted like its source, not the square


def test_it_finds_the_parked_cars_fp32_finds(store: Path) -> None:
    import av

    with av.open(str(MEDIA / "street_parked_cars_720p.mp4")) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    fp32 = load_detector("yolov8n", intra_op_threads=1)
    int8 = load_detector(NAME, intra_op_threads=1)
    sure = [d for d in fp32.detect(frame, 640) if d.label == "car" and d.score >= 0.5]
    cars = [d for d in int8.detect(frame, 640) if d.label == "car" and d.score >= 0.35]
    assert len(sure) >= 3
    found = sum(1 for d in sure if cars and max(_iou(d.box, c.box) for c in cars) >= 0.7)
    assert found >= 0.8 * len(sure), (len(sure), found)
    assert np.isfinite([c.score for c in cars]).all()


def test_it_refuses_a_name_in_use_and_an_already_quantized_model(store: Path) -> None:
    with pytest.raises(QuantizeError, match="registered already"):
        quantize(QuantizeSettings(source="yolov8n", name=NAME))
    with pytest.raises(QuantizeError, match="quantized already"):
        quantize(QuantizeSettings(source="yolov8n_int8", name="twice"))
    with pytest.raises(QuantizeError, match="only square YOLOv8"):
        quantize(QuantizeSettings(source="yolox_nano", name="yolox-int8"))
