"""Footage made from the shared clips at run time (never stored): a camera that sees a hazard come
and go. The shared e-scooter clip shows the scooter in the lift for all of its 20 s; a door hold
must also be seen ending, so ``splice`` plays it and then footage without one, looped by the RTSP
server like a camera. H.264 with a keyframe every second, as cameras send it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

FPS = 10


def _frames(path: Path, size: tuple[int, int], seconds: float | None) -> Iterator[np.ndarray]:
    import av
    import cv2

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = 0
        limit = None if seconds is None else int(seconds * FPS)
        for frame in container.decode(stream):
            if limit is not None and count >= limit:
                return
            yield cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA)
            count += 1


def splice(parts: list[tuple[Path, float | None]], out: Path) -> Path:
    """Write OUT: each (clip, seconds or None for all of it) in turn, at the first clip's size, 10 fps."""
    import av

    with av.open(str(parts[0][0])) as first:
        stream = first.streams.video[0]
        size = (stream.width - stream.width % 2, stream.height - stream.height % 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"g": str(FPS), "keyint_min": str(FPS), "sc_threshold": "0", "preset": "veryfast", "crf": "26"}
        for path, seconds in parts:
            for image in _frames(path, size, seconds):
                for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return out


def lift_in_and_out(media: Path, out: Path) -> Path:
    """The e-scooter in the lift for 20 s, then 20 s of a room with people and no e-bike."""
    return splice([(media / "elevator_escooter_20s.mp4", None), (media / "indoor_people_walking.mp4", 20.0)], out)
