"""The promotion gate: a trained model replaces a camera's model only when it is not worse.

Compared on the candidate's own held-out pictures (never trained on) and the street clip:

- held-out e-bike recall: not lower than the current model's (no tolerance: it is the product);
- false e-bike boxes per image: at most FALSE_BOXES_TOLERANCE above the current model's;
- vehicle agreement on the street clip: at most VEHICLE_TOLERANCE below, where the model is to
  watch a fire lane (a lift camera has no use for cars, and is not held back by them).

The current model's figures come from the candidate's record when it is the candidate's base, and
are measured on the same held-out pictures otherwise (the dataset must still be where it was, with
the same manifest hash, or the gate refuses to guess).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FALSE_BOXES_TOLERANCE = 0.05  # false e-bike boxes per image
VEHICLE_TOLERANCE = 0.02  # vehicle agreement (the "within 2 points")


@dataclass(frozen=True)
class GateFigures:
    model: str
    ebike_recall: float | None
    false_boxes_per_image: float
    vehicle_agreement: float


@dataclass(frozen=True)
class GateVerdict:
    candidate: GateFigures
    current: GateFigures
    failures: list[str]
    fire_lanes: bool

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"candidate": asdict(self.candidate), "current": asdict(self.current), "failures": self.failures,
                "fire_lanes": self.fire_lanes, "passed": self.passed}


class GateUnavailable(ValueError):
    """The figures to compare cannot be had (no training record, dataset gone or changed)."""


def figures_of(measured: dict[str, Any]) -> GateFigures:
    """The gate's figures from a ``measure`` result (models/training.py)."""
    hazard = next(h for h in measured["held_out"]["hazards"] if h["hazard_class"] == "ebike")
    return GateFigures(model=measured["model"], ebike_recall=hazard["recall"],
                       false_boxes_per_image=float(hazard["false_boxes_per_image"]),
                       vehicle_agreement=float(measured["vehicle_agreement"]))


def compare(candidate: GateFigures, current: GateFigures, *, fire_lanes: bool = True) -> list[str]:
    """Each figure on which CANDIDATE is worse than CURRENT beyond its tolerance, said plainly
    (vehicle agreement only where FIRE_LANES are watched)."""
    failures = []
    if (candidate.ebike_recall or 0.0) < (current.ebike_recall or 0.0):
        failures.append(f"held-out e-bike recall {candidate.ebike_recall} is lower than {current.model}'s "
                        f"{current.ebike_recall}")
    if candidate.false_boxes_per_image > current.false_boxes_per_image + FALSE_BOXES_TOLERANCE:
        failures.append(f"false e-bike boxes per image {candidate.false_boxes_per_image} exceed {current.model}'s "
                        f"{current.false_boxes_per_image} by more than {FALSE_BOXES_TOLERANCE}")
    if fire_lanes and candidate.vehicle_agreement < current.vehicle_agreement - VEHICLE_TOLERANCE:
        failures.append(f"vehicle agreement on the street clip {candidate.vehicle_agreement} is more than "
                        f"{VEHICLE_TOLERANCE} below {current.model}'s {current.vehicle_agreement} (fire lanes would regress)")
    return failures


def judge(candidate_name: str, current_name: str, *, fire_lanes: bool = True) -> GateVerdict:
    """The gate for putting CANDIDATE_NAME where CURRENT_NAME runs now (on cameras watching fire lanes or not)."""
    from models.registry import load_registry

    models = {m.name: m for m in load_registry().models}
    candidate = models.get(candidate_name)
    if candidate is None:
        raise GateUnavailable(f"model {candidate_name!r} is not registered (known: {', '.join(models)})")
    record = candidate.trained or {}
    if "figures" not in record:
        raise GateUnavailable(f"model {candidate_name!r} has no held-out figures: only models trained here "
                              "(`sharpeyes models train`) can be promoted through the gate")
    if current_name == candidate_name:
        raise GateUnavailable(f"{candidate_name} is already the model there")
    if current_name == record["base_figures"]["model"]:
        current = figures_of(record["base_figures"])
    else:
        current = figures_of(_measure_on_candidates_split(current_name, record))
    candidate_figures = figures_of(record["figures"])
    return GateVerdict(candidate_figures, current, compare(candidate_figures, current, fire_lanes=fire_lanes), fire_lanes)


def _measure_on_candidates_split(model: str, record: dict[str, Any]) -> dict[str, Any]:
    from models.detector import load_detector
    from models.evaluation import LOW_SCORE
    from models.training import load_sets, manifest_hash, measure, street_frames

    roots = [Path(p) for p in (record["dataset"] if isinstance(record["dataset"], list) else [record["dataset"]])]
    try:
        dataset, _ = load_sets(roots)
    except Exception as exc:  # noqa: BLE001 - any reason the set cannot be read is the same refusal
        raise GateUnavailable(f"the candidate's dataset {roots} cannot be read ({exc}); compare on it where it is") from None
    if manifest_hash(dataset) != record["dataset_manifest_sha256"]:
        raise GateUnavailable(f"the candidate's dataset {roots} changed since training (manifest hash differs)")
    held = set(record["split"]["held_out"])
    indices = [i for i, item in enumerate(dataset.images) if item.path.name in held]
    reference = load_detector(record["base_figures"]["model"], score_threshold=LOW_SCORE, intra_op_threads=1)
    return measure(model, dataset, indices, float(record["settings"]["conf"]), street_frames(), reference)
