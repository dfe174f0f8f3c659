"""A camera frame is converted to BGR once, when something first looks at it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from edge.camera import Frame


def _decoded(shared_media: Path) -> av.VideoFrame:
    with av.open(str(shared_media / "street_parked_cars_720p.mp4")) as container:
        return next(container.decode(video=0))


def test_the_picture_is_converted_on_first_use_and_kept(shared_media: Path) -> None:
    decoded = _decoded(shared_media)
    frame = Frame(None, 1, 10.0, datetime.now(UTC), decoded=decoded)
    image = frame.image
    assert image.shape == (720, 1280, 3) and image.std() > 10  # a picture, not a blank
    assert (image == decoded.to_ndarray(format="bgr24")).all()
    assert frame.image is image, "converted once"


def test_threads_asking_at_once_all_get_the_picture(shared_media: Path) -> None:
    frame = Frame(None, 1, 10.0, datetime.now(UTC), decoded=_decoded(shared_media))
    shapes: list[tuple[int, ...]] = []
    threads = [threading.Thread(target=lambda: shapes.append(frame.image.shape)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shapes == [(720, 1280, 3)] * 8


def test_a_frame_without_a_picture_is_refused() -> None:
    with pytest.raises(ValueError, match="needs its image or its decoded picture"):
        Frame(None, 1, 10.0, datetime.now(UTC))
