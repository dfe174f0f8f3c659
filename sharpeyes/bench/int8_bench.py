"""`sharpeyes bench int8`: CPU per detection of an INT8 model against its fp32 source, same run.

Both detectors run one intra-op thread (as the edge runs each inference slot) on the same frame,
scaled to a camera's stream (default: a lift camera's portrait 408x576 sub-stream) and detected at
the zone's ``detect_width`` (640 for lifts: a 480x640 input). Calls alternate A, B, A, B, ... so
that machine noise falls on both alike; each figure is the median of the calls' thread CPU time
(letterbox, inference, decode, NMS), and only the ratio of two medians from the same repeat is
compared. The worst repeat is the one to judge by.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class RepeatFigures:
    repeat: int
    input: str
    fp32_ms: float
    int8_ms: float
    ratio: float  # int8 / fp32 of the medians: below 1 is cheaper
    speedup: float


def stream_frame(source: Path, width: int, height: int) -> np.ndarray:
    """The first frame of SOURCE (a clip or a picture) scaled to the camera stream's WIDTH x HEIGHT."""
    import cv2

    from sharpeyes.bench.detector_bench import first_frame

    frame = cv2.imread(str(source)) if source.suffix.lower() in (".jpg", ".jpeg", ".png") else first_frame(source)
    if frame is None:
        raise ValueError(f"{source}: not a picture or clip")
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def run_int8_bench(model: str, against: str, frame: np.ndarray, detect_width: int = 640, calls: int = 35,
                   warmup: int = 5, repeats: int = 3) -> list[RepeatFigures]:
    from models.detector import OnnxDetector

    fp32 = OnnxDetector(against, intra_op_threads=1)
    int8 = OnnxDetector(model, intra_op_threads=1)
    size = fp32.input_size_for(frame.shape[1], frame.shape[0], detect_width)
    out = []
    for repeat in range(1, repeats + 1):
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        for call in range(warmup + calls):
            for key, detector in (("fp32", fp32), ("int8", int8)):
                started = time.thread_time()
                detector.detect(frame, detect_width)
                spent = time.thread_time() - started
                if call >= warmup:
                    times[key].append(spent * 1000.0)
        a, b = statistics.median(times["fp32"]), statistics.median(times["int8"])
        out.append(RepeatFigures(repeat=repeat, input=f"{size[0]}x{size[1]}", fp32_ms=round(a, 1), int8_ms=round(b, 1),
                                 ratio=round(b / a, 3), speedup=round(a / b, 2)))
    return out


def worst(figures: list[RepeatFigures]) -> RepeatFigures:
    return max(figures, key=lambda f: f.ratio)


def as_dicts(figures: list[RepeatFigures]) -> list[dict]:
    return [asdict(f) for f in figures]
