"""The real detectors on real photos and footage: labels, scores and box positions."""

from __future__ import annotations

import logging

import pytest

from models.detector import Detection, choose_providers, load_detector


def _labels(detections: list[Detection], label: str, min_score: float = 0.25) -> list[Detection]:
    return [d for d in detections if d.label == label and d.score >= min_score]


def _inside(d: Detection, width: int, height: int) -> bool:
    x1, y1, x2, y2 = d.box
    return 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_bus_photo_has_the_bus_and_its_passengers_where_they_are(yolov8n, read_image) -> None:
    image = read_image("bus.jpg")
    h, w = image.shape[:2]
    found = yolov8n.detect(image)
    buses, people = _labels(found, "bus", 0.5), _labels(found, "person", 0.5)
    assert len(buses) == 1 and len(people) >= 3
    assert all(_inside(d, w, h) for d in found)
    # The bus fills the upper middle of the 810x1080 photo: roughly x 20..800, y 230..770.
    assert _iou(buses[0].box, (20, 230, 800, 770)) > 0.8
    # The man on the right stands at about x 670..810, y 380..875.
    assert max(_iou(p.box, (670, 380, 810, 875)) for p in people) > 0.8


def test_zidane_photo_has_two_people_and_no_vehicle(yolov8n, read_image) -> None:
    found = yolov8n.detect(read_image("zidane.jpg"))
    people = _labels(found, "person", 0.5)
    assert len(people) == 2
    # The standing man on the right, about x 750..1135, y 40..710 of the 1280x720 frame.
    assert max(_iou(p.box, (750, 40, 1135, 710)) for p in people) > 0.8
    assert not [d for d in found if d.label in ("car", "truck", "bus", "motorcycle")]


def test_city_street_has_cars_and_people(yolov8n, read_image) -> None:
    image = read_image("city_street.png")
    found = yolov8n.detect(image)
    assert len(_labels(found, "car", 0.4)) >= 3 and len(_labels(found, "person", 0.4)) >= 5
    assert all(_inside(d, image.shape[1], image.shape[0]) for d in found)
    # Sorted best first, one box per object after NMS: no two same-class boxes overlap heavily.
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            assert a.class_id != b.class_id or _iou(a.box, b.box) < 0.45


def test_escooter_in_elevator_is_a_motorcycle(yolov8n, read_image) -> None:
    found = yolov8n.detect(read_image("elevator_escooter.jpg"))
    scooters = _labels(found, "motorcycle", 0.4)
    assert scooters, f"no motorcycle >= 0.4 in {found}"
    # The scooter stands in the lower middle of the 817x1150 photo.
    x1, y1, x2, y2 = scooters[0].box
    assert 250 < (x1 + x2) / 2 < 560 and 800 < y2 < 1000


def test_street_clip_frame_has_at_least_ten_cars(yolov8n, street_frame) -> None:
    cars = _labels(yolov8n.detect(street_frame), "car", 0.25)
    assert len(cars) >= 10


def test_yolox_nano_finds_the_bus_with_its_own_preprocessing(read_image) -> None:
    detector = load_detector("yolox_nano")
    assert detector.model_name == "yolox_nano" and len(detector.model_sha256) == 64
    found = detector.detect(read_image("bus.jpg"))
    buses = _labels(found, "bus", 0.5)
    assert len(buses) == 1 and _iou(buses[0].box, (20, 230, 800, 770)) > 0.8
    assert len(_labels(found, "person", 0.5)) >= 3


def test_missing_provider_falls_back_to_cpu_with_one_warning(caplog, read_image) -> None:
    with caplog.at_level(logging.WARNING, logger="models.detector"):
        detector = load_detector("yolox_nano", providers=["NoSuchExecutionProvider", "CPUExecutionProvider"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "NoSuchExecutionProvider" in warnings[0].getMessage()
    assert _labels(detector.detect(read_image("bus.jpg")), "bus", 0.5)


def test_provider_choice() -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(None, available) == ["CPUExecutionProvider"]
    assert choose_providers(["CUDAExecutionProvider"], available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # A CPU-only model (dynamic int8) never goes to the GPU, whatever is asked.
    assert choose_providers(["CUDAExecutionProvider"], available, cpu_only=True) == ["CPUExecutionProvider"]


def test_a_grey_frame_has_no_detections_and_a_bad_frame_is_refused(yolov8n) -> None:
    import numpy as np

    assert yolov8n.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="BGR"):
        yolov8n.detect(np.zeros((480, 640), np.uint8))
