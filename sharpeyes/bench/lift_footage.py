"""The lift cameras' footage for `bench edge --hazard ebike`: a mostly empty lift, with people now
and then and an e-scooter or e-bike on some rides, built from the shared clips and cached.

There is no clip of an empty lift among the shared footage; as in the demo (sharpeyes.footage),
the indoor room where people walk in one at a time stands in for the lift between rides. Every
part is letterboxed into the e-scooter clip's frame (it is the lift camera's view, and the zone of
configs/cameras/elevator.yaml is drawn on it), never stretched, so people and vehicles keep their
shape for the detector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FPS = 10
ESCOOTER = "elevator_escooter_20s.mp4"
EBIKE_CCTV = "elevator_ebike_cctv_20s.mp4"
ROOM = "indoor_people_walking.mp4"
# (clip, start s, seconds): one loop of 60 s. The scooter is in the lift for 12 s of it (one ride,
# one alarm per loop), the partly hidden e-bike of the CCTV frame for 8 s (the COCO model misses
# it: the hard case), people walking in the rest.
LIFT_LOOP: tuple[tuple[str, float, float], ...] = (
    (ROOM, 0.0, 6.0),
    (ESCOOTER, 0.0, 12.0),
    (ROOM, 30.0, 24.0),
    (EBIKE_CCTV, 0.0, 8.0),
    (ROOM, 80.0, 10.0),
)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (w, h) with its aspect kept, centred on black."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(2, round(iw * scale)), max(2, round(ih * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w, 3), dtype=np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = resized
    return out


def _frames(path: Path, start_s: float, seconds: float) -> Iterator[np.ndarray]:
    """The clip's frames from ``start_s`` for ``seconds``, resampled to FPS (held or skipped)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        wanted = [start_s + i / FPS for i in range(round(seconds * FPS))]
        current: np.ndarray | None = None
        for frame in container.decode(stream):
            t = float((frame.pts or 0) * stream.time_base)
            image = frame.to_ndarray(format="bgr24")
            while wanted and wanted[0] < t:
                if current is not None:
                    yield current
                wanted.pop(0)
            current = image
            if not wanted:
                return
        for _ in wanted:  # the clip ended early: hold its last frame
            if current is not None:
                yield current


def _key(media: Path) -> str:
    text = ";".join(f"{name}:{(media / name).stat().st_size}:{start}:{secs}" for name, start, secs in LIFT_LOOP)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def lift_source(media: Path, cache_dir: Path) -> Path:
    """The spliced lift loop (built once, ~15 s; then the bench re-encodes it like any camera source)."""
    import av

    missing = [name for name in {n for n, _, _ in LIFT_LOOP} if not (media / name).is_file()]
    if missing:
        raise FileNotFoundError(f"lift footage needs {', '.join(sorted(missing))} in {media}")
    target = cache_dir / f"lift_loop_{_key(media)}.mp4"
    if target.is_file() and target.stat().st_size > 0:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with av.open(str(media / ESCOOTER)) as first:
        video = first.streams.video[0]
        size = (video.width - video.width % 2, video.height - video.height % 2)
    partial = target.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for name, start, seconds in LIFT_LOOP:
            for image in _frames(media / name, start, seconds):
                for packet in stream.encode(av.VideoFrame.from_ndarray(letterbox(image, size), format="bgr24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(target)  # atomic: a killed build never leaves a truncated clip in the cache
    return target
