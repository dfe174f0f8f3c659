"""Ultralytics' part of a training run: its loop with the product's own trainer (no validator, the
old classes' head rows kept) and the ONNX export the edge loads (head constants folded)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.train_settings import HEAD_LAYER, LR_FULL, LR_KEEP_COCO, Progress, TrainingError, TrainSettings


@contextlib.contextmanager
def offline_ultralytics(work: Path) -> Iterator[None]:
    """Ultralytics with its settings in WORK and nothing fetched: no hub sync, no font, no AMP check."""
    saved = {k: os.environ.get(k) for k in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE")}
    os.environ["YOLO_CONFIG_DIR"] = str(work / "ultralytics-settings")
    os.environ["YOLO_OFFLINE"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def keep_old_classes(model: Any, old_classes: int) -> int:
    """Train only what the new classes need in MODEL's head: the box branch is frozen, and in the class
    branch a gradient mask keeps every row of the old classes (and of their hidden channels) as the
    base has them, so the COCO outputs (cars for the fire lanes, people) stay the base's exactly and
    the e-bike row learns on the base's features. Returns the number of masked tensors."""
    import torch

    head = model.model[-1]
    for parameter in head.cv2.parameters():
        parameter.requires_grad_(False)
    masked = 0
    for branch in head.cv3:
        for parameter in branch.parameters():
            if parameter.requires_grad and parameter.shape[0] > old_classes:
                mask = torch.zeros_like(parameter)
                mask[old_classes:] = 1.0
                parameter.register_hook(lambda grad, mask=mask: grad * mask)
                masked += 1
    return masked


def _trainer_class(keep_coco: bool) -> type:
    from types import SimpleNamespace

    from ultralytics.models.yolo.detect import DetectionTrainer

    class NoValidation:
        """Stands where Ultralytics' validator would: models/evaluation.py measures the export instead."""

        def __init__(self) -> None:
            self.metrics = SimpleNamespace(keys=[])
            self.args = SimpleNamespace(plots=False, compile=False)
            self.dataloader = None

        def __call__(self, trainer: Any = None, model: Any = None) -> dict[str, float]:
            return {}

    class HazardTrainer(DetectionTrainer):
        def get_validator(self) -> NoValidation:
            self.loss_names = ("box_loss", "cls_loss", "dfl_loss")  # type: ignore[assignment]  # Ultralytics types it ()
            return NoValidation()

        def _model_train(self) -> None:
            import torch

            super()._model_train()
            if keep_coco:  # the head's norms keep the base's statistics: they serve the old classes too
                model: Any = self.model
                for module in model.model[-1].cv3.modules():
                    if isinstance(module, torch.nn.BatchNorm2d):
                        module.eval()

    return HazardTrainer


def fit(checkpoint: Path, spec: Path, settings: TrainSettings, work: Path, progress: Progress, old_classes: int) -> Path:
    """Ultralytics' training from CHECKPOINT; the last weights."""
    import torch
    from ultralytics import YOLO

    started = time.monotonic()
    yolo = YOLO(str(checkpoint))

    def epoch_done(trainer: Any) -> None:
        parts = trainer.tloss if isinstance(trainer.tloss, dict) else {}
        loss = float(sum(float(v) for v in parts.values())) if parts else float("nan")
        progress(f"epoch {trainer.epoch + 1}/{trainer.epochs}: loss {loss:.3f}, {time.monotonic() - started:.0f} s")

    yolo.add_callback("on_train_epoch_end", epoch_done)
    if settings.keep_coco:
        yolo.add_callback("on_pretrain_routine_end", lambda trainer: keep_old_classes(trainer.model, old_classes))
    yolo.train(trainer=_trainer_class(settings.keep_coco), data=str(spec), epochs=settings.epochs, imgsz=settings.imgsz,
               batch=settings.batch, workers=0, device="0" if torch.cuda.is_available() else "cpu",
               seed=settings.seed, deterministic=True, plots=False, amp=False, val=False, save=True,
               project=str(work), name="run", exist_ok=True, verbose=False,
               # keep_coco: everything but the head is frozen, and no weight decay (it would shrink the
               # old classes' rows, which get no gradient)
               freeze=HEAD_LAYER if settings.keep_coco else settings.freeze,
               weight_decay=0.0 if settings.keep_coco else 0.0005,
               optimizer="AdamW", lr0=settings.lr0 or (LR_KEEP_COCO if settings.keep_coco else LR_FULL),
               warmup_epochs=1, close_mosaic=max(1, settings.epochs // 5),
               patience=settings.epochs + 1, cache=False)
    last = work / "run" / "weights" / "last.pt"
    if not last.is_file():
        raise TrainingError(f"Ultralytics wrote no weights under {last.parent}")
    return last


def export_onnx(weights: Path, target: Path, imgsz: int, description: str) -> Path:
    """WEIGHTS as the edge's ONNX: Ultralytics' export with the head's constants folded into
    initializers (what models/reanchor.py rewrites), no export date and DESCRIPTION instead of
    the training folder's temporary path (same seed, same bytes)."""
    import onnx
    import onnxruntime as ort
    from ultralytics import YOLO

    exported = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, simplify=False, opset=17, dynamic=False,
                                              verbose=False))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    folded = exported.with_name("folded.onnx")
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(exported), sess_options=options, providers=["CPUExecutionProvider"])
    model = onnx.load(str(folded))
    kept = [p for p in model.metadata_props if p.key != "date"]
    for prop in kept:
        if prop.key == "description":
            prop.value = description
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(target))
    return target
