"""Fit an Ultralytics YOLOv8 ONNX export to another input size, in memory.

A YOLOv8 network is fully convolutional; only its export is tied to one input size, through the
head's constants: the anchor points and strides of every grid cell, and the anchor count written
into the DFL reshapes. A 16:9 camera frame letterboxed into the exported 640x640 square spends
44 % of the inference on grey padding. Rewriting those constants for 640x384 gives the same
boxes on the same pixels (the frame is scaled by the same factor) for 60 % of the work; this is
what Ultralytics' own PyTorch predictor does with its "rect" letterbox, which a fixed-shape ONNX
cannot.

Nothing is written to disk: the registered, sha256-checked file is read and the rewritten graph is
handed to onnxruntime as bytes. Every constant that is changed is first checked to hold exactly
the values expected for the export's own size, so an export with a different head is refused
with a clear error instead of being silently mis-anchored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STRIDES = (8, 16, 32)


class ReanchorError(ValueError):
    """The model's head is not the YOLOv8 head this module knows how to resize."""


def anchor_grid(width: int, height: int, strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (2 x N, in grid cells) and strides (N) in the order the YOLOv8 head emits them."""
    points, cell_strides = [], []
    for stride in strides:
        gw, gh = width // stride, height // stride
        xs, ys = np.meshgrid(np.arange(gw, dtype=np.float32) + 0.5, np.arange(gh, dtype=np.float32) + 0.5)
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        cell_strides.append(np.full(gw * gh, stride, dtype=np.float32))
    return np.concatenate(points, axis=1), np.concatenate(cell_strides)


def fitted_size(frame_w: int, frame_h: int, long_side: int, stride: int = 32) -> tuple[int, int]:
    """The smallest stride-aligned input (width, height) that holds the frame scaled so that its
    long side is ``long_side``.

    This is Ultralytics' minimal-rectangle letterbox: a 1280x720 frame for a 640 model gives
    640x384; a square or unknown frame gets a square.
    """
    if frame_w <= 0 or frame_h <= 0:
        return long_side, long_side
    scale = min(long_side / frame_w, long_side / frame_h)
    w = int(np.ceil(round(frame_w * scale) / stride) * stride)
    h = int(np.ceil(round(frame_h * scale) / stride) * stride)
    return min(w, long_side), min(h, long_side)


def reanchor_yolov8(model_path: Path, width: int, height: int) -> bytes:
    """The export at ``model_path`` rewritten for a ``width`` x ``height`` input, serialised."""
    import onnx
    from onnx import numpy_helper

    if width % STRIDES[-1] or height % STRIDES[-1]:
        raise ReanchorError(f"input {width}x{height} must be a multiple of {STRIDES[-1]} on both sides")
    model = onnx.load(str(model_path))
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    old_h, old_w = int(dims[2].dim_value), int(dims[3].dim_value)
    old_points, old_strides = anchor_grid(old_w, old_h)
    new_points, new_strides = anchor_grid(width, height)
    old_n, new_n = old_points.shape[1], new_points.shape[1]

    replaced = {"points": 0, "strides": 0, "shapes": 0}
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.shape == (1, 2, old_n):
            if not np.array_equal(value[0], old_points):
                raise ReanchorError(f"{model_path}: {init.name} is not the anchor grid of a {old_w}x{old_h} YOLOv8 head")
            init.CopyFrom(numpy_helper.from_array(new_points[np.newaxis].astype(value.dtype), init.name))
            replaced["points"] += 1
        elif value.shape == (1, old_n):
            if not np.array_equal(value[0], old_strides):
                raise ReanchorError(f"{model_path}: {init.name} is not the stride table of a {old_w}x{old_h} YOLOv8 head")
            init.CopyFrom(numpy_helper.from_array(new_strides[np.newaxis].astype(value.dtype), init.name))
            replaced["strides"] += 1
        elif value.ndim == 1 and value.dtype.kind == "i" and old_n in value.tolist():
            init.CopyFrom(numpy_helper.from_array(np.where(value == old_n, new_n, value).astype(value.dtype), init.name))
            replaced["shapes"] += 1
        elif old_n in value.shape:
            raise ReanchorError(f"{model_path}: constant {init.name} {value.shape} depends on the input size in an unknown way")
    if replaced["points"] < 1 or replaced["strides"] < 1 or replaced["shapes"] < 1:
        raise ReanchorError(f"{model_path}: no YOLOv8 head constants found for a {old_w}x{old_h} input ({replaced})")
    if any(node.op_type == "Constant" for node in graph.node if "model.22" in node.name):
        raise ReanchorError(f"{model_path}: the head holds Constant nodes; re-export with constants folded (simplify=True)")

    dims[2].dim_value, dims[3].dim_value = height, width
    graph.output[0].type.tensor_type.shape.dim[2].dim_value = new_n
    # Intermediate shapes recorded by the exporter are stale now; onnxruntime infers them again.
    del graph.value_info[:]
    for prop in model.metadata_props:
        if prop.key == "imgsz":  # Ultralytics reads its letterbox size from here
            prop.value = json.dumps([height, width])
    return model.SerializeToString()
