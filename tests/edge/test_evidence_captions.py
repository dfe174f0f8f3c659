"""Evidence snapshots carry Chinese zone and camera names as written, not as question marks."""

from __future__ import annotations

import numpy as np

from edge.evidence import Annotation, annotated_snapshot

KERB = [(0.05, 0.74), (0.95, 0.74), (0.95, 0.90), (0.05, 0.90)]


def _decode(blob) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(blob.data, np.uint8), cv2.IMREAD_COLOR)


def test_chinese_names_are_drawn_not_replaced_by_question_marks(street_frame) -> None:
    # OpenCV 4's Hershey fonts drew each non-ASCII character as "?"; OpenCV 5 (required by the
    # edge) draws them with its built-in Unicode font.
    title = "消防通道 东门"
    drawn = _decode(annotated_snapshot(street_frame, KERB, [], title=title))
    untouched = _decode(annotated_snapshot(street_frame, KERB, []))
    band = slice(0, 60)  # the title strip at the top of the 720-px frame
    assert np.abs(drawn[band].astype(int) - untouched[band].astype(int)).mean() > 2
    for marks in ("".join(c if c.isascii() else "?" for c in title),
                  "".join(c if c.isascii() else "?" * len(c.encode()) for c in title)):
        placeholder = _decode(annotated_snapshot(street_frame, KERB, [], title=marks))
        assert np.abs(drawn[band].astype(int) - placeholder[band].astype(int)).mean() > 1


def test_captions_stay_inside_the_frame(street_frame) -> None:
    h, w = street_frame.shape[:2]
    blob = annotated_snapshot(street_frame, KERB, [Annotation((0.0, 0.0, 0.2, 0.2), "car 0.91 车辆")], title="消防通道")
    image = _decode(blob)
    assert image.shape[:2] == (h, w)
    # The caption of a box touching the top edge is pushed down into the picture, not cut off.
    red = (image[:, :, 2] > 200) & (image[:, :, 1] < 60) & (image[:, :, 0] < 60)
    assert red[: h // 10, : w // 4].any()
