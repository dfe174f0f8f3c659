"""The promotion gate: a trained model replaces a camera's model only when it is not worse.

Compared on the candidate's own held-out pictures (never trained on) and the street clip:

- held-out e-bike recall: not lower than the current model's (no tolerance: it is the product);
- false e-bike boxes per image: at most FALSE_BOXES_TOLERANCE above the current model's;
- vehicle agreement on the street clip: at most VEHICLE_TOLERANCE below, where the model is to
  watch a fire lane (a lift camera has no use for cars, and is not held back by them).

The current model's figures come from the candidate's record only: its base and every model registered
when it was trained are measured then, and a later one by `sharpeyes models gate CANDIDATE --against
CURRENT` (models/gate_figures.py). Nothing here loads a detector, since central judges inside an API
request; a figure not stored is GateUnavailable naming that command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.registry import ModelEntry, load_registry, sha256_file

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


def current_sha256(current: str, models: dict[str, ModelEntry]) -> str:
    """The sha256 of the model CURRENT names (a registered name, or an ONNX file's path), without loading it."""
    if current in models:
        return models[current].sha256
    if current.endswith(".onnx") and Path(current).is_file():
        return sha256_file(Path(current))
    raise GateUnavailable(f"model {current!r} is not registered (known: {', '.join(models)})")


def stored_figures(record: dict[str, Any], current: str, sha256: str) -> dict[str, Any] | None:
    """CURRENT's figures on the candidate's held-out part as RECORD holds them, if measured for SHA256
    (a model replaced under the same name is measured again)."""
    for measured in (record.get("base_figures"), record.get("other_figures", {}).get(current)):
        # Records written before sha256 was stored hold only the base, a published (sha256-pinned) model.
        if measured and measured["model"] == current and measured.get("sha256", sha256) == sha256:
            return measured
    return None


def judge(candidate_name: str, current_name: str, *, fire_lanes: bool = True) -> GateVerdict:
    """The gate for putting CANDIDATE_NAME where CURRENT_NAME runs now (on cameras watching fire lanes or
    not), from the figures stored with the candidate: central calls it inside a request, so it never
    runs a detector (models/gate_figures.py measures, at training time or on `models gate --against`)."""
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
    measured = stored_figures(record, current_name, current_sha256(current_name, models))
    if measured is None:
        why = record.get("unmeasured", {}).get(current_name)
        why = f"it would not load when {candidate_name} was trained: {why}" if why else \
            f"it was registered or changed after {candidate_name} was trained"
        raise GateUnavailable(f"{current_name}'s figures on {candidate_name}'s held-out pictures are not stored "
                              f"({why}): run "
                              f"`sharpeyes models gate {candidate_name} --against {current_name}` to measure it")
    current = figures_of(measured)
    candidate_figures = figures_of(record["figures"])
    return GateVerdict(candidate_figures, current, compare(candidate_figures, current, fire_lanes=fire_lanes), fire_lanes)
