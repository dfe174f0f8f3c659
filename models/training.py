"""`sharpeyes models train`: fine-tune a base detector on a deployment's own labelled pictures.

The steps, each recorded in the registered model's ``trained`` record (docs/models.md):

1. the dataset (YOLO layout, one folder or several) and its manifest hash: sha256 over every
   picture's bytes and its labelled boxes;
2. a split grouped by scene / camera-day (models/splits.py), seeded;
3. the base network (models/torch_base.py) with the dataset's new classes added (``ebike``);
4. labels in the model's class space; what the dataset does not label (cars, dogs, ...) is
   pseudo-labelled by the base model where it is sure, and rehearsal pictures of other scenes
   labelled by the base are trained on alongside (``--pseudo-label``, default), so that the
   fine-tuning does not teach the model that vehicles are background;
5. Ultralytics training (its own loop, augmentation and loss), seeded and deterministic, the
   backbone frozen (``--keep-coco``: everything but the new classes' head rows);
6. ONNX export with the head's constants folded (onnxruntime's basic graph optimisation), so the
   edge's decoder, re-anchoring and fitted input take it like the published export;
7. registration in the local model store with sha256, and the held-out figures of the new model,
   of its base and of every other registered model (models/gate_figures.py), plus vehicle agreement
   on the street clip: what the promotion gate compares, so that central never runs a detector.

Ultralytics' validator is not used: the product's own evaluation of the exported ONNX, run the
way the edge runs it, is what the promotion gate reads. (It also keeps torchvision, whose PyPI
build needs CUDA libraries that a CPU machine lacks, out of the training path.)
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from broker.configbase import ConfigError
from broker.zoneconfig import EBIKE_STAND_INS
from models.evaluation import LOW_SCORE, Dataset, yolo_line
from models.gate_figures import load_sets, manifest_hash, measure, measure_others, spread_frames, street_frames
from models.registry import (
    BaseEntry,
    LocalStore,
    ModelEntry,
    load_registry,
    load_store,
    resolve_model,
    save_store,
    save_trained_record,
    sha256_file,
    store_dir,
)
from models.train_settings import Progress, TrainingError, TrainSettings
from models.ultralytics_fit import export_onnx, fit, offline_ultralytics

PSEUDO_SCORE = 0.5  # base-model boxes at least this sure become labels of what the dataset leaves out
PSEUDO_OVERLAP = 0.3  # ... unless they overlap a labelled box this much (the labeller saw that object)
# Rehearsal: pictures of other scenes labelled by the base model itself and trained on alongside the
# dataset. Without them the class head learns from lift pictures alone that cars, buses and trucks
# never occur, and the fire lanes lose their vehicles (measured with the default settings and
# --no-pseudo-label: vehicle agreement 0.08; docs/models.md). The shared footage other than the
# street check's clip and the lift clips (whose e-bikes the base would call motorcycles).
REHEARSAL_MEDIA = ("parking_lot_traffic.mp4", "lot_person_bicycle_car.mp4", "indoor_people_walking.mp4",
                   "city_street.png", "bus.jpg", "zidane.jpg")
REHEARSAL_PER_CLIP = 8

def base_entry(name: str) -> BaseEntry:
    for entry in load_registry().bases:
        if entry.name == name:
            return entry
    known = ", ".join(b.name for b in load_registry().bases)
    raise TrainingError(f"base {name!r} is not under bases: in models/registry.yaml (known: {known})")


def load_base(entry: BaseEntry) -> tuple[Any, tuple[str, ...]]:
    """The base's PyTorch network and class names (a vetted checkpoint, else rebuilt from its export)."""
    from models import torch_base
    from models.registry import _resolve

    onnx = resolve_model(entry.rebuilt_from or entry.name)
    if entry.checkpoint and entry.checkpoint_sha256:
        from models.checkpoint import pickle_globals, refused_globals

        path = _resolve(entry.checkpoint, entry.checkpoint_sha256)
        if refused := refused_globals(pickle_globals(path)):
            raise TrainingError(f"{path}: refused, its pickle references {', '.join(refused)}")
        import torch

        model = torch.load(path, map_location="cpu", weights_only=False)["model"].float()
        return model, tuple(model.names[i] for i in range(len(model.names)))
    return torch_base.rebuild(onnx.path, entry.architecture, onnx.class_names), onnx.class_names


def pseudo_labels(detections: list[Any], width: int, height: int, labelled: np.ndarray,
                  skip_labels: frozenset[str]) -> list[tuple[int, np.ndarray]]:
    """Boxes of the base model to add as labels: sure ones (PSEUDO_SCORE), of classes the dataset
    does not label and that do not stand in for one it does, away from every labelled box."""
    from supervision import box_iou_batch

    scale = np.array([width, height, width, height], dtype=float)
    out: list[tuple[int, np.ndarray]] = []
    for d in detections:
        if d.score < PSEUDO_SCORE or d.label in skip_labels:
            continue
        box = np.asarray(d.box, dtype=float) / scale
        if len(labelled) and box_iou_batch(box[None], labelled).max() >= PSEUDO_OVERLAP:
            continue
        out.append((int(d.class_id), box.clip(0, 1)))
    return out


def rehearsal_pictures(sources: list[Path], per_clip: int = REHEARSAL_PER_CLIP) -> list[tuple[str, np.ndarray]]:
    """(name, BGR picture) from each source: a still, or PER_CLIP frames spread over a clip."""
    import cv2

    pictures = []
    for source in sources:
        if source.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov"):
            pictures += [(f"{source.stem}-{index}", frame) for index, frame in spread_frames(source, per_clip, ends=False)]
        else:
            image = cv2.imread(str(source))
            if image is not None:
                pictures.append((source.stem, image))
                continue
            raise TrainingError(f"{source}: neither a clip nor a picture OpenCV can read (fix: drop it from --rehearsal)")
    return pictures


def default_rehearsal() -> list[Path]:
    from models.registry import PROJECT_ROOT

    media = PROJECT_ROOT.parent / "shared" / "media"
    return [media / name for name in REHEARSAL_MEDIA if (media / name).is_file()]


@dataclass(frozen=True)
class Prepared:
    """What prepare wrote: the data.yaml and how many labels and pictures of each kind were added."""

    spec: Path
    pseudo_labels: int
    rehearsal_pictures: int
    lift_augmented: int = 0  # lift-view copies of training pictures (TrainSettings.lift_augment)


def prepare(dataset: Dataset, split_train: list[int], split_held: list[int], model_names: tuple[str, ...],
            work: Path, *, labeller: Any | None, rehearsal: list[Path], progress: Progress,
            lift_augment: int = 0, seed: int = 0) -> Prepared:
    """The Ultralytics dataset under WORK (pictures linked, labels in the model's class space, plus
    the rehearsal pictures labelled by LABELLER, plus LIFT_AUGMENT lift-view copies of every training
    picture, seeded by SEED: models/lift_augment.py). The held-out part ("val") gets no copy: it is
    what the figures are measured on, and a warped twin of a training picture is no unseen picture."""
    import cv2

    to_model = {class_id: model_names.index(name) for class_id, name in dataset.names.items()}
    labelled_names = set(dataset.names.values())
    # A stand-in of a labelled class (a motorcycle box on what the set calls an e-bike) is not added.
    skip = frozenset(labelled_names | (EBIKE_STAND_INS if "ebike" in labelled_names else frozenset()))
    ebike = frozenset({model_names.index("ebike")} if "ebike" in model_names else ())
    added = augmented = 0
    for part, indices in (("train", split_train), ("val", split_held)):
        (work / "images" / part).mkdir(parents=True, exist_ok=True)
        (work / "labels" / part).mkdir(parents=True, exist_ok=True)
        for index in indices:
            item = dataset.images[index]
            target = work / "images" / part / item.path.name
            if not target.exists():
                target.symlink_to(item.path.resolve())
            classes = [to_model[int(c)] for c in item.classes]
            boxes = [np.asarray(b, dtype=float) for b in item.boxes]
            wanted = part == "train" and (labeller is not None or lift_augment > 0)
            image = cv2.imread(str(item.path)) if wanted else None
            if labeller is not None and image is not None:
                height, width = image.shape[:2]
                extra = pseudo_labels(labeller.detect(image), width, height, item.boxes, skip)
                classes += [c for c, _ in extra]
                boxes += [b for _, b in extra]
                added += len(extra)
            lines = [yolo_line(c, b) for c, b in zip(classes, boxes, strict=True)]
            (work / "labels" / part / item.path.with_suffix(".txt").name).write_text("\n".join(lines) + "\n")
            if lift_augment > 0 and image is not None:
                augmented += write_lift_views(image, classes, boxes, work, item.path.stem, copies=lift_augment,
                                              seed=seed, occlude=ebike)
    pictures = rehearsal_pictures(rehearsal) if labeller is not None else []
    for name, image in pictures:
        height, width = image.shape[:2]
        assert labeller is not None  # pictures are only taken with a labeller
        found = pseudo_labels(labeller.detect(image), width, height, np.zeros((0, 4)), frozenset())
        cv2.imwrite(str(work / "images" / "train" / f"rehearsal-{name}.jpg"), image)
        (work / "labels" / "train" / f"rehearsal-{name}.txt").write_text("".join(yolo_line(c, b) + "\n" for c, b in found))
    if labeller is not None:
        progress(f"pseudo-labels: {added} boxes of unlabelled classes on {len(split_train)} training pictures; "
                 f"{len(pictures)} rehearsal pictures labelled by the base")
    if lift_augment > 0:
        progress(f"lift views: {augmented} copies of {len(split_train)} training pictures ({lift_augment} each: "
                 "fisheye, camera high in a corner, crop round the e-bike, occlusion); none of the held-out part")
    spec = work / "data.yaml"
    spec.write_text(yaml.safe_dump({"path": str(work), "train": "images/train", "val": "images/val",
                                    "names": dict(enumerate(model_names))}, sort_keys=False))
    return Prepared(spec, added, len(pictures), augmented)


def levers(settings: TrainSettings, prepared: Prepared) -> dict[str, Any]:
    """The recall levers a model was trained with, for its record (``models list``, the store), so that
    a figure can be traced to them: the lift-view copies per training picture and how many were written."""
    return {"lift_augment": {"copies_per_picture": settings.lift_augment, "pictures": prepared.lift_augmented}}


def write_lift_views(image: np.ndarray, classes: list[int], boxes: list[np.ndarray], work: Path, stem: str, *,
                     copies: int, seed: int, occlude: frozenset[int]) -> int:
    """COPIES lift views of one training picture as ``lift-STEM-K.jpg`` with its label file under WORK's
    train part; how many were written.

    The labels of a copy are the picture's labels (the dataset's and the pseudo-labels) moved by the
    same warp, not the base model's boxes on the warped picture: the warp is known exactly, while the
    base is the model that fails on fisheye, top-down and occluded views (that is why the copies are
    made) and would leave the very objects unlabelled that the copies are there to teach, turning them
    into background."""
    import zlib

    import cv2

    from models.lift_augment import lift_views

    # One stream per picture (the training seed and the picture's name), so a picture's copies do not
    # change when another picture joins or leaves the training part.
    rng = np.random.default_rng([seed, zlib.crc32(stem.encode())])
    written = 0
    for k, view in enumerate(lift_views(image, np.asarray(classes, dtype=int), np.asarray(boxes, dtype=float).reshape(-1, 4),
                                        rng, copies=copies, occlude_classes=occlude)):
        name = f"lift-{stem}-{k}"
        if not cv2.imwrite(str(work / "images" / "train" / f"{name}.jpg"), view.image):
            raise TrainingError(f"could not write {work / 'images' / 'train' / name}.jpg")
        lines = [yolo_line(int(c), b) for c, b in zip(view.classes, view.boxes, strict=True)]
        (work / "labels" / "train" / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
        written += 1
    return written


def train(settings: TrainSettings, progress: Progress = print) -> ModelEntry:
    """Train, export, register and measure; the registered entry."""
    from models import torch_base
    from models.splits import grouped_split

    started = time.monotonic()
    if any(m.name == settings.name for m in load_registry().models):
        raise TrainingError(f"a model named {settings.name!r} is registered already; choose another --name")
    dataset, groups = load_sets(list(settings.data))
    if "ebike" not in dataset.names.values():
        raise ConfigError(settings.data[0] / "data.yaml", ["names: no ebike class (fix: label e-bikes as class ebike)"])
    digest = manifest_hash(dataset)
    paths = [i.path for i in dataset.images]
    ebike_id = next(c for c, n in dataset.names.items() if n == "ebike")
    wanted = [bool((item.classes == ebike_id).any()) for item in dataset.images]
    try:
        split = grouped_split(groups, held_out_share=settings.held_out_share, seed=settings.seed, wanted=wanted)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    progress(f"dataset {', '.join(map(str, settings.data))}: {len(paths)} pictures in {len(groups)} scene groups; "
             f"training on {len(split.train)}, holding out {len(split.held_out)} (seed {settings.seed})")

    entry = base_entry(settings.base)
    base_model, base_names = load_base(entry)
    new_classes = tuple(n for _, n in sorted(dataset.names.items()) if n not in base_names)
    model = torch_base.add_classes(base_model, entry.architecture, new_classes)
    names = tuple(model.names[i] for i in range(len(model.names)))
    progress(f"base {settings.base} ({len(base_names)} classes) + {', '.join(new_classes) or 'no new class'}")

    from models.detector import load_detector

    out_dir = store_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sharpeyes-train-") as tmp, offline_ultralytics(Path(tmp)):
        work = Path(tmp)
        checkpoint = torch_base.save_checkpoint(model, work / "base.pt", source=f"base {settings.base}")
        labeller = load_detector(entry.rebuilt_from or settings.base, score_threshold=PSEUDO_SCORE,
                                 intra_op_threads=1) if settings.pseudo_label else None
        rehearsal = list(settings.rehearsal) if settings.rehearsal is not None else default_rehearsal()
        prepared = prepare(dataset, split.train, split.held_out, names, work / "data", labeller=labeller,
                           rehearsal=rehearsal, progress=progress, lift_augment=settings.lift_augment,
                           seed=settings.seed)
        weights = fit(checkpoint, prepared.spec, settings, work, progress, len(base_names))
        trained_seconds = round(time.monotonic() - started, 1)
        onnx_file = export_onnx(weights, out_dir / f"{settings.name}.onnx", settings.imgsz,
                                f"{settings.base} fine-tuned by sharpeyes models train on {dataset.root.name} "
                                f"(manifest sha256 {digest[:16]}, seed {settings.seed})")
    names_file = out_dir / f"{settings.name}.names"
    names_file.write_text("\n".join(names) + "\n", encoding="utf-8")

    record: dict[str, Any] = {
        "base": settings.base, "base_verified": entry.verified, "dataset": [str(p) for p in settings.data],
        "dataset_manifest_sha256": digest, "settings": {**asdict(settings), "data": [str(p) for p in settings.data],
                                                          "rehearsal": [str(p) for p in rehearsal]},
        "split": {"train": [str(paths[i].name) for i in split.train],
                  "held_out": [str(paths[i].name) for i in split.held_out],
                  "groups": len(groups)},
        "pseudo_labels": prepared.pseudo_labels, "rehearsal_pictures": prepared.rehearsal_pictures,
        "levers": levers(settings, prepared),
        "training_seconds": trained_seconds,
    }
    new_entry = ModelEntry(name=settings.name, file=onnx_file.name, sha256=sha256_file(onnx_file),
                           input_size=(settings.imgsz, settings.imgsz), decoder="yolov8", color="rgb",
                           licence=f"derived from {settings.base} (AGPL-3.0, Ultralytics); trained on {dataset.root.name}",
                           classes=names_file.name, providers="any", trained=record)
    store = load_store()
    store = LocalStore(models=[*store.models, new_entry],
                       class_files={**store.class_files, names_file.name: sha256_file(names_file)})
    save_store(store)
    progress(f"registered {settings.name}: {onnx_file} (sha256 {new_entry.sha256[:12]}…) in {trained_seconds:.0f} s")
    frames = street_frames()
    reference = load_detector(entry.rebuilt_from or settings.base, score_threshold=LOW_SCORE, intra_op_threads=1)
    record["figures"] = measure(settings.name, dataset, split.held_out, settings.conf, frames, reference)
    base_name = entry.rebuilt_from or settings.base
    record["base_figures"] = measure(base_name, dataset, split.held_out, settings.conf, frames, reference)
    # Now, while the held-out part is at hand, so that central's gate never measures (gate_figures.py).
    record["other_figures"], record["unmeasured"] = measure_others(
        {settings.name, base_name}, dataset, split.held_out, settings.conf, frames, reference, progress)
    record["total_seconds"] = round(time.monotonic() - started, 1)
    return save_trained_record(settings.name, record)


def remove(name: str) -> None:
    """Forget a trained model (its files and its store entry)."""
    store = load_store()
    entry = next((m for m in store.models if m.name == name), None)
    if entry is None:
        raise TrainingError(f"{name!r} is not a model trained here (models in the store: {[m.name for m in store.models]})")
    for file in (entry.file, entry.classes):
        (store_dir() / file).unlink(missing_ok=True)
    save_store(LocalStore(models=[m for m in store.models if m.name != name],
                          class_files={k: v for k, v in store.class_files.items() if k != entry.classes}))
