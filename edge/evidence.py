"""Evidence snapshots: the frame with the zone and the offending objects drawn on a copy."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.captions import caption_size_px, draw_caption
from edge.geometry import Box, Point

ZONE_COLOUR = (0, 215, 255)  # amber, BGR
OBJECT_COLOUR = (0, 0, 255)  # red
JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class EvidenceBlob:
    sha256: str
    content_type: str
    data: bytes

    @classmethod
    def of(cls, data: bytes, content_type: str) -> EvidenceBlob:
        return cls(hashlib.sha256(data).hexdigest(), content_type, data)


@dataclass(frozen=True, slots=True)
class Annotation:
    """A box to draw, normalised 0..1, with its caption."""

    box: Box
    caption: str


def annotated_snapshot(
    frame_bgr: np.ndarray, polygon: Sequence[Point], annotations: Sequence[Annotation], *, title: str = ""
) -> EvidenceBlob:
    """A JPEG of the frame with the zone outline, boxes and captions; the frame is not modified."""
    import cv2

    image = frame_bgr.copy()
    h, w = image.shape[:2]
    thickness = max(1, round(min(w, h) / 360))
    text_px = caption_size_px(w, h)
    if len(polygon):  # camera-level hazards (offline, tampered) have no zone to draw
        pts = np.array([[round(x * w), round(y * h)] for x, y in polygon], dtype=np.int32)
        cv2.polylines(image, [pts], isClosed=True, color=ZONE_COLOUR, thickness=thickness, lineType=cv2.LINE_AA)
    for ann in annotations:
        x1, y1, x2, y2 = (round(ann.box[0] * w), round(ann.box[1] * h), round(ann.box[2] * w), round(ann.box[3] * h))
        cv2.rectangle(image, (x1, y1), (x2, y2), OBJECT_COLOUR, thickness)
        draw_caption(image, ann.caption, (x1, y1), text_px, OBJECT_COLOUR)
    if title:
        draw_caption(image, title, (0, 0), text_px, OBJECT_COLOUR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of the evidence snapshot failed")
    return EvidenceBlob.of(encoded.tobytes(), "image/jpeg")


def raw_frame(frame_bgr: np.ndarray) -> EvidenceBlob:
    """The frame as the camera saw it, without drawings: what a reviewer checks the drawings against."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of the raw frame failed")
    return EvidenceBlob.of(encoded.tobytes(), "image/jpeg")
