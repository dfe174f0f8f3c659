"""What a training run is asked for (``sharpeyes models train``'s options) and its learning rates:
shared by the training steps (models/training.py) and Ultralytics' fit (models/ultralytics_fit.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LR_FULL = 0.002
LR_KEEP_COCO = 0.02  # one row per new class learns: it can take larger steps
HEAD_LAYER = 22  # YOLOv8's Detect head is layer 22: freezing 0-21 leaves the head alone to train
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    data: tuple[Path, ...]  # one YOLO-layout folder or several (merged by class name)
    base: str = "yolov8n"
    name: str = "ebike-v1"
    epochs: int = 15
    imgsz: int = 640
    seed: int = 0
    batch: int = 8
    held_out_share: float = 0.25
    pseudo_label: bool = True  # also switches rehearsal on: both are labels from the base model
    rehearsal: tuple[Path, ...] | None = None  # None: the shared footage (default_rehearsal)
    keep_coco: bool = False  # True: only the new classes learn, the base's classes stay exactly (keep_old_classes)
    lr0: float | None = None  # AdamW's learning rate (default: LR_KEEP_COCO, or LR_FULL without keep_coco)
    freeze: int = 10  # without keep_coco: layers kept as the base has them (YOLOv8: 0-9 is the backbone)
    conf: float = 0.35  # the operating threshold the held-out figures are taken at
    # Lift-view augmentation (models/lift_augment.py): this many distorted / squeezed / occluded copies of
    # every training picture are added to the training part (never the held-out part); 0 = off
    lift_augment: int = 0


class TrainingError(ValueError):
    pass
