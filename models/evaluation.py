"""Detection quality on a labelled image set, measured the way the edge uses the detector.

The dataset is Ultralytics' YOLO layout (what CVAT, FiftyOne and Label Studio export): ``data.yaml``
with ``names``, ``images/`` and ``labels/`` (one ``class cx cy w h`` line per object, normalised).
The model's labels are mapped to the dataset's classes as the edge's zones read them: for the
``ebike`` class, whatever the ``indoor`` zone reacts to (COCO ``motorcycle``/``bicycle``, or a
fine-tuned model's ``ebike``); a class the model names itself (``person``) is itself.

Per class: precision and recall at the operating threshold, AP50 and AP50-95 (supervision's
``MeanAveragePrecision``, COCO-style, on every detection down to a low score). Per hazard, at the
operating threshold: recall (a labelled object matched by any box of the labels the hazard reacts
to at IoU >= 0.5), false hazard boxes per image, and the share of images with the object in which
at least one was found. CPU milliseconds per image beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from broker.configbase import ConfigError
from broker.zoneconfig import labels_for_model
from broker.zonekinds import ZONE_KINDS, ZoneKind
from models.detector import Detector  # the very detector the edge runs
from models.intervals import wilson

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MATCH_IOU = 0.5
LOW_SCORE = 0.05  # detections kept for the AP curves (the operating threshold decides P, R and hazards)
# Dataset class -> the zone kind whose labels stand for it at the edge (for the model evaluated:
# broker.zoneconfig.labels_for_model).
HAZARD_ZONES: dict[str, ZoneKind] = {"ebike": "indoor"}


def hazard_labels(hazard_class: str, model_classes: tuple[str, ...]) -> tuple[str, ...]:
    """The model labels that count as HAZARD_CLASS, as the edge's zone for it reads them."""
    return labels_for_model(ZONE_KINDS[HAZARD_ZONES[hazard_class]].labels or (), model_classes)


@dataclass
class LabelledImage:
    path: Path
    classes: np.ndarray  # (n,) dataset class ids
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2 normalised


@dataclass
class Dataset:
    root: Path
    names: dict[int, str]
    images: list[LabelledImage]


@dataclass
class ClassFigures:
    name: str
    labelled: int
    precision: float | None
    recall: float | None
    ap50: float | None
    ap50_95: float | None
    # The counts behind precision and recall, and their 95 % Wilson intervals (models/intervals.py):
    # on a few dozen boxes one miss moves a figure by several points, and the interval says so.
    true_positives: int = 0
    predicted: int = 0
    precision_ci: list[float] | None = None
    recall_ci: list[float] | None = None


@dataclass
class HazardFigures:
    hazard_class: str
    model_labels: list[str]
    labelled: int
    found: int
    recall: float | None
    false_boxes_per_image: float
    images_with_object: int
    image_hit_rate: float | None
    images_hit: int = 0
    false_boxes: int = 0
    recall_ci: list[float] | None = None
    image_hit_rate_ci: list[float] | None = None


@dataclass
class Evaluation:
    model: str
    dataset: str
    images: int
    conf: float
    cpu_ms_per_image: float
    classes: list[ClassFigures] = field(default_factory=list)
    hazards: list[HazardFigures] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_dataset(root: Path) -> Dataset:
    """Read a YOLO-layout set; ConfigError naming the file and the fix when it is not one."""
    spec = root / "data.yaml"
    if not spec.is_file():
        raise ConfigError(spec, ["file not found (fix: point --data at a YOLO dataset folder with data.yaml, images/, labels/)"])
    data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    raw = data.get("names") if isinstance(data, dict) else None
    if isinstance(raw, list):
        names = dict(enumerate(str(n) for n in raw))
    elif isinstance(raw, dict):
        names = {int(k): str(v) for k, v in raw.items()}
    else:
        raise ConfigError(spec, ["names: missing (fix: names: {0: ebike, 1: person})"])
    images = []
    for path in sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        label = root / "labels" / path.relative_to(root / "images").with_suffix(".txt")
        rows = [line.split() for line in label.read_text(encoding="utf-8").splitlines() if line.strip()] if label.is_file() else []
        for n, row in enumerate(rows, 1):
            if len(row) != 5 or int(float(row[0])) not in names:
                raise ConfigError(label, [f"line {n}: expected 'class cx cy w h' with a class of names {sorted(names)}"])
        arr = np.array([[float(v) for v in row] for row in rows], dtype=float).reshape(-1, 5)
        cx, cy, w, h = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).clip(0, 1)
        images.append(LabelledImage(path, arr[:, 0].astype(int), boxes))
    if not images:
        raise ConfigError(root / "images", ["no images (fix: put the pictures under images/ and their labels under labels/)"])
    return Dataset(root, names, images)


def yolo_line(class_id: int, box: Iterable[float]) -> str:
    """One label line of the layout load_dataset reads: ``class cx cy w h`` from x1, y1, x2, y2 (0..1)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return f"{class_id} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"


def _class_of(label: str, names: dict[int, str], standing_in: dict[str, tuple[str, ...]]) -> int | None:
    for class_id, name in names.items():
        if label == name or label in standing_in.get(name, ()):
            return class_id
    return None


def evaluate(detector: Detector, dataset: Dataset, *, conf: float, input_width: int | None = 640) -> Evaluation:
    import cv2
    import supervision as sv
    from supervision.metrics import MeanAveragePrecision

    map_metric = MeanAveragePrecision()
    counts = {c: [0, 0, 0] for c in dataset.names}  # labelled, true positives, predicted (at conf)
    classes = tuple(getattr(detector, "class_names", ()))
    standing_in = {name: hazard_labels(name, classes) for name in HAZARD_ZONES}
    hazard = {name: [0, 0, 0, 0, 0] for name in HAZARD_ZONES if name in dataset.names.values()}
    # labelled, found, false boxes, images with it, images hit
    seconds = 0.0
    for item in dataset.images:
        image = cv2.imread(str(item.path))
        if image is None:
            raise ConfigError(item.path, ["not an image OpenCV can read (fix: remove it or convert it to JPEG/PNG)"])
        height, width = image.shape[:2]
        started = time.process_time()
        found = detector.detect(image, input_width)
        seconds += time.process_time() - started
        scale = np.array([width, height, width, height], dtype=float)
        mapped = [(c, d) for d in found if (c := _class_of(d.label, dataset.names, standing_in)) is not None]
        predicted = sv.Detections(xyxy=np.array([d.box for _, d in mapped], dtype=float).reshape(-1, 4),
                                  confidence=np.array([d.score for _, d in mapped], dtype=float),
                                  class_id=np.array([c for c, _ in mapped], dtype=int))
        truth_xyxy = item.boxes * scale
        map_metric.update(predicted, sv.Detections(xyxy=truth_xyxy, class_id=item.classes))
        keep = predicted.confidence >= conf if predicted.confidence is not None else np.zeros(0, dtype=bool)
        op_xyxy, op_class = predicted.xyxy[keep], np.asarray(predicted.class_id)[keep]
        for class_id in dataset.names:
            mine_t, mine_p = truth_xyxy[item.classes == class_id], op_xyxy[op_class == class_id]
            matched = _matched(mine_t, mine_p)
            counts[class_id][0] += len(mine_t)
            counts[class_id][1] += int(matched.sum())
            counts[class_id][2] += len(mine_p)
            name = dataset.names[class_id]
            if name in hazard:
                h = hazard[name]
                h[0] += len(mine_t)
                h[1] += int(matched.sum())
                h[2] += int(len(mine_p) - _used(mine_t, mine_p))
                if len(mine_t):
                    h[3] += 1
                    h[4] += int(matched.any())
    result = map_metric.compute()
    per_class_50 = _per_class(result, 0)
    per_class_all = _per_class(result, None)
    n = len(dataset.images)
    evaluation = Evaluation(model=detector.model_name, dataset=str(dataset.root), images=n, conf=conf,
                            cpu_ms_per_image=round(1000 * seconds / n, 1))
    for class_id, name in sorted(dataset.names.items()):
        labelled, tp, pred = counts[class_id]
        evaluation.classes.append(ClassFigures(
            name=name, labelled=labelled, precision=_ratio(tp, pred), recall=_ratio(tp, labelled),
            ap50=per_class_50.get(class_id), ap50_95=per_class_all.get(class_id), true_positives=tp, predicted=pred,
            precision_ci=_interval(tp, pred), recall_ci=_interval(tp, labelled)))
    for name, (labelled, hits, false_boxes, with_object, hit_images) in hazard.items():
        evaluation.hazards.append(HazardFigures(
            hazard_class=name, model_labels=list(standing_in[name]), labelled=labelled, found=hits,
            recall=_ratio(hits, labelled), false_boxes_per_image=round(false_boxes / n, 3),
            images_with_object=with_object, image_hit_rate=_ratio(hit_images, with_object), images_hit=hit_images,
            false_boxes=false_boxes, recall_ci=_interval(hits, labelled),
            image_hit_rate_ci=_interval(hit_images, with_object)))
    return evaluation


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def _interval(successes: int, trials: int) -> list[float] | None:
    bounds = wilson(successes, trials)
    return None if bounds is None else [round(bounds[0], 3), round(bounds[1], 3)]


def _matched(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per labelled box: whether some predicted box overlaps it at IoU >= 0.5 (greedy, one each)."""
    import supervision as sv

    hit = np.zeros(len(truth), dtype=bool)
    if not len(truth) or not len(predicted):
        return hit
    ious = sv.box_iou_batch(truth, predicted)
    taken: set[int] = set()
    for t in np.argsort(-ious.max(axis=1)):
        for p in np.argsort(-ious[t]):
            if ious[t, p] < MATCH_IOU:
                break
            if int(p) not in taken:
                taken.add(int(p))
                hit[t] = True
                break
    return hit


def _used(truth: np.ndarray, predicted: np.ndarray) -> int:
    """Predicted boxes that overlap some labelled box at IoU >= 0.5 (the rest are false boxes)."""
    import supervision as sv

    if not len(truth) or not len(predicted):
        return 0
    return int((sv.box_iou_batch(truth, predicted).max(axis=0) >= MATCH_IOU).sum())


def _per_class(result: Any, iou_index: int | None) -> dict[int, float]:
    """AP per class from supervision's result: at IoU 0.5 (index 0) or averaged over 0.5:0.95."""
    ap = np.asarray(result.ap_per_class)
    out = {}
    for row, class_id in enumerate(np.asarray(result.matched_classes).tolist()):
        value = float(ap[row, iou_index] if iou_index is not None else ap[row].mean())
        out[int(class_id)] = round(value, 3)
    return out
