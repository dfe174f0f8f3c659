"""The YOLOv8 export fitted to the camera's frame shape finds what the square export finds."""

from __future__ import annotations

import numpy as np
import pytest

from models.reanchor import ReanchorError, anchor_grid, fitted_size, reanchor_yolov8
from models.registry import resolve_model


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [((1280, 720), (640, 384)), ((1920, 1080), (640, 384)), ((640, 480), (640, 480)), ((704, 576), (640, 544)),
     ((720, 1280), (384, 640)), ((640, 640), (640, 640)), ((0, 0), (640, 640))],
)
def test_fitted_size_is_the_smallest_stride_aligned_box_around_the_scaled_frame(frame, expected) -> None:
    assert fitted_size(*frame, long_side=640) == expected


def test_anchor_grid_matches_the_constants_ultralytics_exported(shared_models) -> None:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(resolve_model("yolov8n").path)).graph
    tables = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    points, strides = anchor_grid(640, 640)
    assert points.shape == (2, 8400)
    assert any(v.shape == (1, 2, 8400) and np.array_equal(v[0], points) for v in tables.values())
    assert any(v.shape == (1, 8400) and np.array_equal(v[0], strides) for v in tables.values())


def test_fitted_detector_finds_the_parked_cars_the_square_one_finds(street_frame, yolov8n) -> None:
    from models.detector import load_detector

    square = load_detector("yolov8n", intra_op_threads=2, fit_input=False)
    assert yolov8n.input_size_for(1280, 720) == (640, 384)
    assert square.input_size_for(1280, 720) == (640, 640)
    fitted_cars = [d for d in yolov8n.detect(street_frame) if d.label == "car" and d.score >= 0.5]
    square_cars = [d for d in square.detect(street_frame) if d.label == "car" and d.score >= 0.5]
    assert len(square_cars) >= 10
    # The frame is scaled by the same factor into both inputs, so the same cars come out in the
    # same places; only the grey padding that the square input adds is gone.
    assert abs(len(fitted_cars) - len(square_cars)) <= 1
    matched = [max(_iou(s.box, f.box) for f in fitted_cars) for s in square_cars]
    assert sorted(matched)[1] > 0.85
    assert all(0 <= f.box[1] < f.box[3] <= 720 for f in fitted_cars)


def test_reanchoring_refuses_sizes_off_the_stride_and_other_heads(shared_models) -> None:
    path = resolve_model("yolov8n").path
    with pytest.raises(ReanchorError, match="multiple of 32"):
        reanchor_yolov8(path, 640, 360)
    with pytest.raises(ReanchorError, match="no YOLOv8 head constants"):
        reanchor_yolov8(resolve_model("yolox_nano").path, 416, 256)


def test_reanchored_graph_declares_its_new_input_for_other_runtimes(shared_models) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(reanchor_yolov8(resolve_model("yolov8n").path, 640, 384),
                                   providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 384, 640]
    (output,) = session.run(None, {"images": np.zeros((1, 3, 384, 640), np.float32)})
    assert output.shape == (1, 84, 80 * 48 + 40 * 24 + 20 * 12)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["imgsz"] == "[384, 640]"


def test_fire_lane_width_finds_the_parked_row_as_the_full_width_does(street_frame, yolov8n) -> None:
    """The fire-lane profile's 480-px input (a third of the square's work) keeps the parked row."""
    from broker.zonekinds import ZONE_KINDS

    def kerb_cars(width: int) -> int:
        # The near kerb of configs/cameras/street-parked.yaml: y 0.74..0.90 of the 720-px frame.
        found = yolov8n.detect(street_frame, width)
        return sum(1 for d in found if d.label == "car" and d.score >= 0.35 and 0.70 * 720 <= (d.box[1] + d.box[3]) / 2 <= 0.92 * 720)

    width = ZONE_KINDS["fire_lane"].sampling.detect_width
    assert yolov8n.input_size_for(1280, 720, width) == (480, 288)
    assert kerb_cars(640) >= 3
    assert kerb_cars(width) >= kerb_cars(640) - 1
