"""The figures the promotion gate compares, measured with ONNX off central's request path.

A trained model's record (models/training.py) holds its held-out figures and those of the models
it may replace, each measured on the same held-out pictures and the street clip, the way the edge
runs them:

- at training time: its base (``base_figures``) and every other registered model that loads
  (``other_figures``, keyed by name, each with the sha256 it was measured for; the ones that would
  not load are in ``unmeasured`` with the reason);
- later, for a model registered after it: ``sharpeyes models gate CANDIDATE --against CURRENT``
  measures CURRENT here and stores it in the candidate's record (``prepare_gate``).

The gate itself (models/promotion.py) only reads these, so ``POST /api/v1/models/promote`` never
runs a detector: a missing figure is a 409 naming the command above.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from broker.zoneconfig import labels_for_model
from broker.zonekinds import ZONE_KINDS
from models.evaluation import LOW_SCORE, MATCH_IOU, Dataset, LabelledImage, evaluate, load_dataset
from models.promotion import GateUnavailable, current_sha256, stored_figures
from models.registry import load_registry, save_trained_record, sha256_file

STREET_CLIP = "street_parked_cars_720p.mp4"
STREET_FRAMES = 8
REFERENCE_SCORE = 0.5  # the base's vehicle boxes this sure are the street check's reference
Progress = Callable[[str], None]


def manifest_hash(dataset: Dataset) -> str:
    """sha256 over the class names and every picture's bytes and labelled boxes (in order)."""
    digest = hashlib.sha256(json.dumps(dataset.names, sort_keys=True).encode())
    for item in dataset.images:
        digest.update(item.path.name.encode())
        digest.update(sha256_file(item.path).encode())
        digest.update(np.round(item.boxes, 6).astype("<f8").tobytes() + item.classes.astype("<i8").tobytes())
    return digest.hexdigest()


def load_sets(roots: list[Path]) -> tuple[Dataset, list[list[int]]]:
    """One dataset from several YOLO-layout folders (a starter set and exported reviews), classes
    merged by name, and its scene / camera-day groups (each folder grouped on its own)."""
    from models.splits import manifest_groups, picture_groups

    names: dict[int, str] = {}
    images: list[LabelledImage] = []
    groups: list[list[int]] = []
    for root in roots:
        part = load_dataset(root)
        for name in part.names.values():
            if name not in names.values():
                names[len(names)] = name
        to_merged = {old: next(k for k, v in names.items() if v == name) for old, name in part.names.items()}
        offset = len(images)
        for item in part.images:
            images.append(LabelledImage(item.path, np.array([to_merged[int(c)] for c in item.classes], dtype=int),
                                        item.boxes))
        paths = [i.path for i in part.images]
        groups += [[offset + i for i in g] for g in (manifest_groups(part.root, paths) or picture_groups(paths))]
    return Dataset(roots[0], names, images), groups


def spread_frames(clip: Path, count: int, *, ends: bool) -> list[tuple[int, np.ndarray]]:
    """(index, BGR frame) for COUNT frames evenly spread over CLIP, first and last included if ENDS."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    spots = np.linspace(0, max(0, total - 1), count if ends else count + 2)
    frames = []
    for index in (spots if ends else spots[1:-1]).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        if ok:
            frames.append((int(index), frame))
    capture.release()
    return frames


def street_frames() -> list[np.ndarray]:
    """STREET_FRAMES frames spread over the shared street clip (parked and passing cars)."""
    from models.registry import PROJECT_ROOT

    clip = PROJECT_ROOT.parent / "shared" / "media" / STREET_CLIP
    frames = [frame for _, frame in spread_frames(clip, STREET_FRAMES, ends=True)]
    if not frames:
        raise GateUnavailable(f"{clip}: no frames (the street check needs ../shared/media beside the project)")
    return frames


def vehicle_agreement(candidate: Any, reference: Any, frames: list[np.ndarray], conf: float) -> tuple[float, int]:
    """Share of REFERENCE's sure vehicle boxes that CANDIDATE finds (IoU >= 0.5, any fire-lane label,
    at the operating threshold): the fire lanes' regression check. (The street clip has no labels;
    the base model's sure boxes are the reference, so the base scores 1.0 by construction.)"""
    from supervision import box_iou_batch

    lane_labels = ZONE_KINDS["fire_lane"].labels or ()
    wanted_ref = set(lane_labels)
    wanted_new = set(labels_for_model(lane_labels, tuple(getattr(candidate, "class_names", ()))))
    found = total = 0
    for frame in frames:
        ref = np.array([d.box for d in reference.detect(frame) if d.label in wanted_ref and d.score >= REFERENCE_SCORE])
        new = np.array([d.box for d in candidate.detect(frame) if d.label in wanted_new and d.score >= conf])
        total += len(ref)
        if len(ref) and len(new):
            found += int((box_iou_batch(ref.reshape(-1, 4), new.reshape(-1, 4)).max(axis=1) >= MATCH_IOU).sum())
    return (round(found / total, 3) if total else 1.0), total


def measure(model: str, dataset: Dataset, held_out: list[int], conf: float, frames: list[np.ndarray],
            reference: Any) -> dict[str, Any]:
    """The figures the promotion gate compares: held-out hazard and class figures, vehicle agreement."""
    from models.detector import load_detector

    detector = load_detector(model, score_threshold=LOW_SCORE, intra_op_threads=1)
    part = Dataset(dataset.root, dataset.names, [dataset.images[i] for i in held_out])
    ev = evaluate(detector, part, conf=conf)
    agreement, reference_boxes = vehicle_agreement(detector, reference, frames, conf)
    return {"model": model, "held_out": ev.to_json(), "vehicle_agreement": agreement,
            "vehicle_reference_boxes": reference_boxes, "sha256": detector.model_sha256}


def measure_others(skip: set[str], dataset: Dataset, held_out: list[int], conf: float, frames: list[np.ndarray],
                   reference: Any, progress: Progress) -> tuple[dict[str, Any], dict[str, str]]:
    """Every registered model but SKIP measured like the new model: (figures by name, why not by name).

    So that promoting over any model registered now needs no detector in central. What it costs, on
    the shared e-bike set's held-out part (5 pictures, seeds 0 and 1) and the 8 street frames, one
    onnxruntime thread on 2 cores shared with other work (load ~5.5): 5.2-5.4 s for yolov8n_int8 and
    yolox_nano together, ~3 s per model at 640 px, so ~3 s more per model trained here before; next
    to the 190 s that training with the defaults takes, about 3%."""
    started = time.monotonic()
    figures: dict[str, Any] = {}
    unmeasured: dict[str, str] = {}
    for entry in load_registry().models:
        if entry.name in skip:
            continue
        try:
            figures[entry.name] = measure(entry.name, dataset, held_out, conf, frames, reference)
        except Exception as exc:  # noqa: BLE001 - missing file, wrong sha256, a graph onnxruntime refuses: all say "not comparable here"
            unmeasured[entry.name] = f"{type(exc).__name__}: {exc}"
    progress(f"measured {len(figures)} other registered models on the held-out part in "
             f"{time.monotonic() - started:.1f} s" + (f" ({', '.join(unmeasured)} would not load)" if unmeasured else ""))
    return figures, unmeasured


def prepare_gate(candidate: str, current: str, progress: Progress) -> bool:
    """Measure CURRENT on CANDIDATE's held-out part and the street clip and store it in CANDIDATE's
    record, unless figures for CURRENT's sha256 are stored already; True when it measured. The
    dataset must still be where it was with the same manifest hash (else the gate refuses to guess)."""
    from models.detector import load_detector

    models = {m.name: m for m in load_registry().models}
    entry = models.get(candidate)
    record = (entry.trained if entry else None) or {}
    if entry is None or "figures" not in record:
        return False  # the gate itself says why it cannot judge such a candidate
    if current == candidate or stored_figures(record, current, current_sha256(current, models)) is not None:
        return False
    roots = [Path(p) for p in (record["dataset"] if isinstance(record["dataset"], list) else [record["dataset"]])]
    try:
        dataset, _ = load_sets(roots)
    except Exception as exc:  # noqa: BLE001 - any reason the set cannot be read is the same refusal
        raise GateUnavailable(f"the candidate's dataset {roots} cannot be read ({exc}); compare on it where it is") from None
    if manifest_hash(dataset) != record["dataset_manifest_sha256"]:
        raise GateUnavailable(f"the candidate's dataset {roots} changed since training (manifest hash differs)")
    held = set(record["split"]["held_out"])
    indices = [i for i, item in enumerate(dataset.images) if item.path.name in held]
    started = time.monotonic()
    reference = load_detector(record["base_figures"]["model"], score_threshold=LOW_SCORE, intra_op_threads=1)
    measured = measure(current, dataset, indices, float(record["settings"]["conf"]), street_frames(), reference)
    others = {**record.get("other_figures", {}), current: measured}
    save_trained_record(candidate, {**record, "other_figures": others})
    progress(f"measured {current} on {candidate}'s {len(indices)} held-out pictures and the street clip in "
             f"{time.monotonic() - started:.1f} s; stored in {candidate}'s record")
    return True
