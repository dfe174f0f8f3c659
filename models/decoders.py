"""Turning raw detector outputs into candidate boxes (before NMS), one function per model family.

Each decoder returns ``(boxes, scores, class_ids)`` with boxes as x1,y1,x2,y2 in model-input
pixels, keeping only candidates whose best class score reaches ``score_threshold``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)


def decode_yolov8(output: np.ndarray, input_size: tuple[int, int], score_threshold: float) -> Candidates:
    """YOLOv8 ``output0`` 1 x (4 + C) x N: cx, cy, w, h in input pixels, then C sigmoid scores."""
    preds = output[0].T  # N x (4 + C)
    class_scores = preds[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores >= score_threshold
    return _cxcywh_to_xyxy(preds[keep, :4]), scores[keep], class_ids[keep]


def _yolox_grid(input_size: tuple[int, int], strides: tuple[int, ...] = (8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    cells, cell_strides = [], []
    w, h = input_size
    for stride in strides:
        gw, gh = w // stride, h // stride
        xs, ys = np.meshgrid(np.arange(gw), np.arange(gh))
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        cell_strides.append(np.full((gw * gh, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(cell_strides).astype(np.float32)


def decode_yolox(output: np.ndarray, input_size: tuple[int, int], score_threshold: float) -> Candidates:
    """YOLOX ``output`` 1 x N x (5 + C): grid offsets and log sizes per stride, objectness, class scores."""
    preds = output[0]
    cells, strides = _yolox_grid(input_size)
    if len(cells) != len(preds):
        raise ValueError(f"YOLOX output has {len(preds)} anchors, expected {len(cells)} for input {input_size}")
    class_scores = preds[:, 5:] * preds[:, 4:5]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores >= score_threshold
    p, c, s = preds[keep], cells[keep], strides[keep]
    centres = (p[:, :2] + c) * s
    sizes = np.exp(p[:, 2:4]) * s
    return _cxcywh_to_xyxy(np.concatenate([centres, sizes], axis=1)), scores[keep], class_ids[keep]


DECODERS: dict[str, Callable[[np.ndarray, tuple[int, int], float], Candidates]] = {
    "yolov8": decode_yolov8,
    "yolox": decode_yolox,
}
