"""Fixtures for the edge's detection tests: one real detector per session (loading costs ~0.3 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import PROJECT_ROOT

CAMERA_CONFIGS = PROJECT_ROOT / "configs" / "cameras"


@pytest.fixture(scope="session")
def yolov8n(shared_models: Path):
    from models.detector import load_detector

    return load_detector("yolov8n", intra_op_threads=2)


@pytest.fixture(scope="session")
def read_image(shared_media: Path):
    import cv2

    def read(name: str) -> np.ndarray:
        image = cv2.imread(str(shared_media / name))
        assert image is not None, f"cannot read {shared_media / name}"
        return image

    return read


@pytest.fixture(scope="session")
def street_frame(shared_media: Path) -> np.ndarray:
    """The first frame of the parked-cars street clip (1280x720)."""
    import cv2

    capture = cv2.VideoCapture(str(shared_media / "street_parked_cars_720p.mp4"))
    ok, frame = capture.read()
    capture.release()
    assert ok, "cannot decode street_parked_cars_720p.mp4"
    return frame
