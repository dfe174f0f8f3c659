"""The promotion gate's rule, figure by figure (models/promotion.py)."""

from __future__ import annotations

from models.promotion import FALSE_BOXES_TOLERANCE, VEHICLE_TOLERANCE, GateFigures, compare

CURRENT = GateFigures(model="yolov8n", ebike_recall=0.667, false_boxes_per_image=0.2, vehicle_agreement=1.0)


def _candidate(**change: float) -> GateFigures:
    figures = {"ebike_recall": 0.833, "false_boxes_per_image": 0.2, "vehicle_agreement": 0.99} | change
    return GateFigures(model="lift-ebike", **figures)  # type: ignore[arg-type]


def test_a_model_better_or_equal_within_tolerance_passes() -> None:
    assert compare(_candidate(), CURRENT) == []
    assert compare(_candidate(ebike_recall=0.667, false_boxes_per_image=0.2 + FALSE_BOXES_TOLERANCE,
                              vehicle_agreement=1.0 - VEHICLE_TOLERANCE), CURRENT) == []


def test_each_worse_figure_is_named() -> None:
    (recall,) = compare(_candidate(ebike_recall=0.5), CURRENT)
    assert recall == "held-out e-bike recall 0.5 is lower than yolov8n's 0.667"
    (false_boxes,) = compare(_candidate(false_boxes_per_image=0.3), CURRENT)
    assert false_boxes.startswith("false e-bike boxes per image 0.3 exceed yolov8n's 0.2")
    (vehicles,) = compare(_candidate(vehicle_agreement=0.95), CURRENT)
    assert "vehicle agreement on the street clip 0.95" in vehicles and "fire lanes would regress" in vehicles
    assert len(compare(_candidate(ebike_recall=0.1, false_boxes_per_image=1.0, vehicle_agreement=0.0), CURRENT)) == 3


def test_vehicles_count_only_where_a_fire_lane_is_watched() -> None:
    lift_only = _candidate(vehicle_agreement=0.3)
    assert compare(lift_only, CURRENT, fire_lanes=False) == []
    assert len(compare(lift_only, CURRENT, fire_lanes=True)) == 1
