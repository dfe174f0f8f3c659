"""`sharpeyes models eval-seeds`: train once per seed (each seed is also another held-out split) and
report the base and the trained model on each held-out part, and pooled over all, with 95 % intervals.

One split of the shared set holds out 5-7 pictures, so one run's recall moves by 0.14-0.17 per miss
(issue 28). Several seeds give several splits and several trainings; adding their counts up gives
one figure with an interval narrow enough to compare. The held-out parts of different seeds may
share pictures (each split is drawn from the same 18), so the pooled counts are not independent
draws and the pooled interval is, if anything, too narrow: it is reported beside every seed's own
figure, never instead of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.evaluation import Evaluation
from models.intervals import Share, pooled

Progress = Callable[[str], None]
HAZARD = "ebike"


@dataclass(frozen=True)
class HeldOutFigures:
    """One model on one seed's held-out part, as counts (intervals come from them)."""

    seed: int | None  # None: pooled over the seeds
    model: str
    pictures: int
    recall: Share  # labelled e-bikes found at IoU 0.5
    precision: Share  # e-bike boxes at the threshold that match a labelled e-bike
    image_hits: Share  # pictures with an e-bike where at least one was found
    false_boxes: int

    @property
    def false_boxes_per_image(self) -> float:
        return round(self.false_boxes / self.pictures, 3) if self.pictures else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "model": self.model, "pictures": self.pictures, "recall": self.recall.to_json(),
                "precision": self.precision.to_json(), "image_hit_rate": self.image_hits.to_json(),
                "false_boxes": self.false_boxes, "false_boxes_per_image": self.false_boxes_per_image}


@dataclass
class SeedsReport:
    """Per seed the base and the trained model on that seed's held-out part; pooled rows."""

    conf: float
    epochs: int
    lift_augment: int = 0  # lift-view copies per training picture the trained models had (0: off)
    base: list[HeldOutFigures] = field(default_factory=list)
    trained: list[HeldOutFigures] = field(default_factory=list)

    def pooled(self) -> tuple[HeldOutFigures, HeldOutFigures]:
        return pool(self.base, "base"), pool(self.trained, "trained")

    def to_json(self) -> dict[str, Any]:
        base, trained = self.pooled()
        return {"conf": self.conf, "epochs": self.epochs, "lift_augment": self.lift_augment, "base": [r.to_json() for r in self.base],
                "trained": [r.to_json() for r in self.trained], "pooled": {"base": base.to_json(),
                                                                           "trained": trained.to_json()}}


def figures_of(seed: int | None, ev: Evaluation) -> HeldOutFigures:
    """The e-bike figures of one evaluation as counts."""
    hazard = next(h for h in ev.hazards if h.hazard_class == HAZARD)
    cls = next(c for c in ev.classes if c.name == HAZARD)
    return HeldOutFigures(seed=seed, model=ev.model, pictures=ev.images, recall=Share(hazard.found, hazard.labelled),
                          precision=Share(cls.true_positives, cls.predicted),
                          image_hits=Share(hazard.images_hit, hazard.images_with_object), false_boxes=hazard.false_boxes)


def pool(rows: Sequence[HeldOutFigures], model: str) -> HeldOutFigures:
    """The rows' counts added up (one figure over every seed's held-out part)."""
    return HeldOutFigures(seed=None, model=model, pictures=sum(r.pictures for r in rows),
                          recall=pooled(r.recall for r in rows), precision=pooled(r.precision for r in rows),
                          image_hits=pooled(r.image_hits for r in rows), false_boxes=sum(r.false_boxes for r in rows))


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-2`` as a list of distinct seeds, in order."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            values = range(int(low), int(high) + 1) if high else [int(low)]
        except ValueError:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed; give integers like 0,1,2 or 0-2") from None
        seeds += [s for s in values if s not in seeds]
    if not seeds:
        raise ValueError(f"--seeds {text!r} names no seed; give e.g. 0,1,2")
    return seeds


def run_seeds(data: list[Path], seeds: list[int], *, prefix: str, epochs: int, conf: float, reuse: bool,
              progress: Progress, **settings: Any) -> SeedsReport:
    """Train ``PREFIX-s<seed>`` for each seed (or, with REUSE, take the one registered already) and
    measure it and its base on that seed's held-out part, the way ``models eval`` measures."""
    from models.detector import load_detector
    from models.evaluation import LOW_SCORE, Dataset, evaluate
    from models.gate_figures import load_sets
    from models.registry import load_registry
    from models.train_settings import TrainingError, TrainSettings
    from models.training import train

    dataset, _ = load_sets(data)
    lift_augment = int(settings.get("lift_augment", 0))
    report = SeedsReport(conf=conf, epochs=epochs, lift_augment=lift_augment)
    for seed in seeds:
        name = f"{prefix}-s{seed}"
        entry = next((m for m in load_registry().models if m.name == name), None)
        if entry is not None and not reuse:
            raise TrainingError(f"a model named {name!r} is registered already; pass --reuse to measure it as it is, "
                                "or choose another --name-prefix")
        if entry is None:
            progress(f"seed {seed}: training {name} ({epochs} epochs)")
            entry = train(TrainSettings(data=tuple(data), name=name, epochs=epochs, seed=seed, conf=conf, **settings),
                          progress=progress)
        record = entry.trained or {}
        if record.get("settings", {}).get("seed") != seed:
            raise TrainingError(f"{name} was not trained with seed {seed}; choose another --name-prefix")
        trained_with = int(record.get("settings", {}).get("lift_augment", 0))
        if trained_with != lift_augment:
            raise TrainingError(f"{name} was trained with --lift-augment {trained_with}, not {lift_augment}; "
                                "give the same --lift-augment or choose another --name-prefix")
        held = set(record["split"]["held_out"])
        part = Dataset(dataset.root, dataset.names, [i for i in dataset.images if i.path.name in held])
        if len(part.images) != len(held):
            raise TrainingError(f"{name}'s held-out pictures are not all in {', '.join(map(str, data))}; "
                                "measure it on the data it was trained on")
        base_name = str(record.get("base_figures", {}).get("model") or record.get("base", "yolov8n"))
        for model, rows in ((base_name, report.base), (name, report.trained)):
            detector = load_detector(model, score_threshold=LOW_SCORE, intra_op_threads=1)
            rows.append(figures_of(seed, evaluate(detector, part, conf=conf)))
        progress(f"seed {seed}: {len(part.images)} held-out pictures; e-bikes found: base "
                 f"{report.base[-1].recall.text()}, {name} {report.trained[-1].recall.text()}")
    return report
