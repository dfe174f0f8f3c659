"""Resizing a frame into a detector's square input, and mapping boxes back to the frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed in the model input: ``input = frame * scale + pad`` per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map x1,y1,x2,y2 boxes (N x 4) from input pixels to frame pixels, clipped to the frame."""
        out = boxes.astype(np.float32, copy=True)
        out[:, [0, 2]] = np.clip((out[:, [0, 2]] - self.pad_x) / self.scale_x, 0, self.frame_w)
        out[:, [1, 3]] = np.clip((out[:, [1, 3]] - self.pad_y) / self.scale_y, 0, self.frame_h)
        return out


def letterbox(frame: np.ndarray, size: tuple[int, int], *, centred: bool) -> tuple[np.ndarray, Letterbox]:
    """Scale ``frame`` to fit ``size`` (width, height) keeping its aspect, pad the rest with 114.

    ``centred`` puts the image in the middle (Ultralytics' convention); otherwise it sits at the
    top-left corner (YOLOX's). The model was trained with one of them, so the other shifts boxes.
    """
    import cv2

    in_w, in_h = size
    h, w = frame.shape[:2]
    scale = min(in_w / w, in_h / h)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w, h) else frame
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    if centred:
        left, top = (in_w - new_w) // 2, (in_h - new_h) // 2
    else:
        left, top = 0, 0
    canvas[top : top + new_h, left : left + new_w] = resized
    # Rounding makes the effective scale differ slightly per axis; keep both so that a box on the
    # frame's right or bottom edge maps back exactly onto it.
    box = Letterbox(scale_x=new_w / w, scale_y=new_h / h, pad_x=float(left), pad_y=float(top), frame_w=w, frame_h=h)
    return canvas, box
