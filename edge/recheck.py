"""Is the hazard present right now? Used by the ``recheck`` command to verify a reported fix:
one detection on the newest frame, judged by the zone's labels, score and footprint, without
dwell (the question is "is it still there", not "did it just arrive")."""

from __future__ import annotations

from dataclasses import dataclass

from broker.zoneconfig import ZoneConfig
from edge.geometry import footprint, normalise_box, point_in_polygon
from models.detector import Detection


@dataclass(frozen=True, slots=True)
class RecheckResult:
    present: bool
    objects: list[tuple[str, float, tuple[float, float, float, float]]]  # label, score, normalised box


def hazard_present(zone: ZoneConfig, detections: list[Detection], width: int, height: int) -> RecheckResult:
    labels = set(zone.labels or ())
    polygon = [(float(x), float(y)) for x, y in zone.polygon]
    hits = []
    for d in detections:
        if d.label not in labels or d.score < zone.min_score:
            continue
        box = normalise_box(d.box, width, height)
        if point_in_polygon(footprint(box), polygon):
            hits.append((d.label, float(d.score), box))
    needed = getattr(zone, "min_count", 1) or 1
    return RecheckResult(present=len(hits) >= needed, objects=hits)
