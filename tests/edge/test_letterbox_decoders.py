"""Letterbox placement and the raw-output decoders, on constructed tensors with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from models.decoders import decode_yolov8, decode_yolox
from models.letterbox import PAD_VALUE, letterbox


def test_centred_letterbox_pads_evenly_and_maps_boxes_back() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    image, placement = letterbox(frame, (640, 640), centred=True)
    assert image.shape == (640, 640, 3)
    assert placement.pad_x == 0 and placement.pad_y == 140  # 1280x720 -> 640x360, centred
    assert (image[:140] == PAD_VALUE).all() and (image[500:] == PAD_VALUE).all() and (image[140:500] == 0).all()
    # A box in input pixels covering the picture area maps back to the whole frame.
    back = placement.to_frame(np.array([[0, 140, 640, 500], [320, 320, 330, 330]], np.float32))
    np.testing.assert_allclose(back[0], [0, 0, 1280, 720], atol=0.5)
    np.testing.assert_allclose(back[1], [640, 360, 660, 380], atol=0.5)


def test_top_left_letterbox_and_boxes_outside_are_clipped() -> None:
    frame = np.zeros((1150, 816, 3), np.uint8)
    image, placement = letterbox(frame, (416, 416), centred=False)
    assert placement.pad_x == 0 and placement.pad_y == 0
    new_w = round(816 * 416 / 1150)
    assert (image[:, new_w:] == PAD_VALUE).all() and (image[:, : new_w - 1] == 0).all()
    back = placement.to_frame(np.array([[-10, -10, 416, 500]], np.float32))
    np.testing.assert_allclose(back[0], [0, 0, 816, 1150], atol=0.5)


def test_yolov8_decoder_takes_best_class_and_converts_centre_boxes() -> None:
    out = np.zeros((1, 84, 8400), np.float32)
    out[0, :4, 7] = [100, 200, 40, 60]  # cx, cy, w, h
    out[0, 4 + 2, 7] = 0.9  # class 2 (car)
    out[0, 4 + 0, 7] = 0.3
    out[0, :4, 8] = [10, 10, 5, 5]
    out[0, 4 + 5, 8] = 0.1  # below threshold
    boxes, scores, classes = decode_yolov8(out, (640, 640), 0.25)
    assert classes.tolist() == [2]
    assert scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(boxes[0], [80, 170, 120, 230])


def test_yolox_decoder_uses_grid_offsets_strides_and_objectness() -> None:
    out = np.zeros((1, 3549, 85), np.float32)
    # Anchor 0 of stride 16 (after 52*52 stride-8 cells): grid cell (3, 2) is index 52*52 + 2*26 + 3.
    i = 52 * 52 + 2 * 26 + 3
    out[0, i, :4] = [0.5, 0.5, np.log(4.0), np.log(2.0)]
    out[0, i, 4] = 0.8  # objectness
    out[0, i, 5 + 3] = 0.9  # class 3
    out[0, 0, 4], out[0, 0, 5] = 0.9, 0.2  # obj*cls 0.18 < threshold
    boxes, scores, classes = decode_yolox(out, (416, 416), 0.25)
    assert classes.tolist() == [3]
    assert scores.tolist() == pytest.approx([0.72])
    cx, cy, w, h = (3 + 0.5) * 16, (2 + 0.5) * 16, 4 * 16, 2 * 16
    np.testing.assert_allclose(boxes[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-5)


def test_yolox_decoder_rejects_an_output_of_the_wrong_input_size() -> None:
    with pytest.raises(ValueError, match="anchors"):
        decode_yolox(np.zeros((1, 8400, 85), np.float32), (416, 416), 0.25)
