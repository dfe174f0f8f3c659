"""`sharpeyes bench detector`: CPU per detection by detector input size, on a real camera frame.

The sizes are measured in interleaved rounds in one process (one intra-op thread, as the edge
runs them), so machine noise falls on all of them alike; each figure is the median round's
CPU time per ``detect`` call (letterbox, inference, decode, NMS) and its ratio to the square
export's. The count of vehicles found in the street clip's near-kerb fire lane shows what each
size still sees.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.detector import Detection

VEHICLES = {"car", "truck", "bus", "motorcycle"}
# The near kerb of configs/cameras/street-parked.yaml, as fractions of the frame.
KERB = (0.05, 0.74, 0.95, 0.90)


@dataclass
class SizeFigures:
    input_width: int
    input: str
    cpu_ms: float
    vs_square: float
    kerb_vehicles: int


def first_frame(source: Path) -> np.ndarray:
    import av

    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="bgr24")
    raise ValueError(f"{source}: no video frames")


def _kerb_vehicles(detections: list[Detection], width: int, height: int) -> int:
    x1, y1, x2, y2 = KERB[0] * width, KERB[1] * height, KERB[2] * width, KERB[3] * height
    return sum(1 for d in detections if d.label in VEHICLES and d.score >= 0.35
               and x1 <= (d.box[0] + d.box[2]) / 2 <= x2 and y1 <= (d.box[1] + d.box[3]) / 2 <= y2)


def run_detector_bench(source: Path, model: str = "yolov8n", widths: tuple[int, ...] = (640, 512, 480, 416),
                       rounds: int = 5, calls: int = 6) -> list[SizeFigures]:
    from models.detector import OnnxDetector

    frame = first_frame(source)
    height, width = frame.shape[:2]
    square = OnnxDetector(model, intra_op_threads=1, fit_input=False)
    fitted = OnnxDetector(model, intra_op_threads=1)
    contestants = [("square", square, None)] + [(f"fitted {w}", fitted, w) for w in widths]
    for _name, detector, w in contestants:
        detector.detect(frame, w)  # builds the session for this size; not timed
    per_round: dict[str, list[float]] = {name: [] for name, _d, _w in contestants}
    for _ in range(rounds):
        for name, detector, w in contestants:
            started = time.process_time()
            for _ in range(calls):
                detector.detect(frame, w)
            per_round[name].append((time.process_time() - started) / calls * 1000.0)
    base = statistics.median(per_round["square"])
    out = []
    for name, detector, w in contestants:
        size = detector.input_size_for(width, height, w)
        cpu = statistics.median(per_round[name])
        out.append(SizeFigures(input_width=w or size[0], input=f"{size[0]}x{size[1]}" + (" (square)" if name == "square" else ""),
                               cpu_ms=round(cpu, 1), vs_square=round(cpu / base, 2),
                               kerb_vehicles=_kerb_vehicles(detector.detect(frame, w), width, height)))
    return out


def as_dicts(figures: list[SizeFigures]) -> list[dict]:
    return [asdict(f) for f in figures]
