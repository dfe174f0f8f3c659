"""How well and how fast evidence is redacted (central/evidence/redaction.py), on real pictures.

Recall is measured per labelled person: a person counts as covered when a detected face lies in
the upper part of their box, where a head is. The shared e-bike set labels persons (class 1), not
faces, and many of them face away from the camera, so this under-states face recall and states
what matters for de-identification: how many of the people in view come out blurred. Speed is CPU
per image against a same-run baseline that decodes and re-encodes the image without detection.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from central.evidence.redaction import FaceDetector

PERSON_CLASS = 1
HEAD_SHARE = 0.35  # the upper share of a person's box where their head is


@dataclass(frozen=True, slots=True)
class RedactionFigures:
    name: str
    images: int
    persons: int
    covered: int
    faces: int
    ms_per_image: float
    baseline_ms: float

    @property
    def recall(self) -> float:
        return self.covered / self.persons if self.persons else float("nan")


def _persons(label_file: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    boxes = []
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and int(parts[0]) == PERSON_CLASS:
            cx, cy, w, h = (float(v) for v in parts[1:])
            boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
    return boxes


def _covered(person: tuple[float, float, float, float], faces: list[tuple[float, float, float, float]]) -> bool:
    x1, y1, x2, y2 = person
    head_bottom = y1 + HEAD_SHARE * (y2 - y1)
    return any(x1 <= (fx1 + fx2) / 2 <= x2 and y1 - 0.1 * (y2 - y1) <= (fy1 + fy2) / 2 <= head_bottom
               for fx1, fy1, fx2, fy2 in faces)


def _reencoded(data: bytes) -> Image.Image:
    """What serving an image costs without redaction: decode, then encode again."""
    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB")
    rgb.save(io.BytesIO(), "JPEG", quality=85)
    return rgb


def measure(name: str, items: list[tuple[Path, list[tuple[float, float, float, float]] | None]],
            detector: FaceDetector) -> RedactionFigures:
    persons = covered = faces_total = 0
    detect_ms = baseline_ms = 0.0
    for image_path, labelled in items:
        data = image_path.read_bytes()
        start = time.process_time()
        rgb = np.asarray(_reencoded(data))
        middle = time.process_time()
        found = detector.detect(rgb)
        baseline_ms += (middle - start) * 1000
        detect_ms += (time.process_time() - middle) * 1000
        faces_total += len(found)
        if labelled is not None:
            persons += len(labelled)
            covered += sum(_covered(p, found) for p in labelled)
    n = max(1, len(items))
    return RedactionFigures(name, len(items), persons, covered, faces_total, (baseline_ms + detect_ms) / n, baseline_ms / n)


def dataset_items(folder: Path) -> list[tuple[Path, list[tuple[float, float, float, float]] | None]]:
    items: list[tuple[Path, list[tuple[float, float, float, float]] | None]] = []
    for image_path in sorted((folder / "images").iterdir()):
        label = folder / "labels" / (image_path.stem + ".txt")
        with Image.open(image_path) as opened:
            width, height = opened.size
        items.append((image_path, _persons(label, width, height) if label.exists() else []))
    return items
