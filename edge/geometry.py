"""Plane geometry in normalised image coordinates (0..1): footprints, polygons, overlap."""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
Point = tuple[float, float]


def normalise_box(box: Box, width: int, height: int) -> Box:
    """A box in pixels as fractions of the frame, clipped to 0..1."""
    x1, y1, x2, y2 = box
    c = _clip01
    return (c(x1 / width), c(y1 / height), c(x2 / width), c(y2 / height))


def _clip01(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def footprint(box: Box) -> Point:
    """Where an object stands: the bottom-centre of its box (the ground contact point)."""
    x1, _, x2, y2 = box
    return ((x1 + x2) / 2.0, y2)


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; a point on the outline counts as inside.

    The outline matters in practice: boxes are clipped to the frame, so a vehicle cut off by
    the picture's bottom edge stands exactly at y = 1.0, where a zone drawn to the bottom of
    the picture ends.
    """
    x, y = point
    inside = False
    n = len(polygon)
    for i in range(n):
        ax, ay = polygon[i]
        bx, by = polygon[(i + 1) % n]
        if _on_segment(x, y, ax, ay, bx, by):
            return True
        if (ay > y) != (by > y):
            cross_x = ax + (y - ay) * (bx - ax) / (by - ay)
            if x < cross_x:
                inside = not inside
    return inside


def _on_segment(x: float, y: float, ax: float, ay: float, bx: float, by: float, eps: float = 1e-9) -> bool:
    cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
    if abs(cross) > eps:
        return False
    return min(ax, bx) - eps <= x <= max(ax, bx) + eps and min(ay, by) - eps <= y <= max(ay, by) + eps


def box_size(box: Box) -> tuple[float, float]:
    return (max(box[2] - box[0], 0.0), max(box[3] - box[1], 0.0))


def iou(a: Box, b: Box) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def greedy_match(scores: list[list[float]], minimum: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best-first from a score matrix, each row and column once, >= minimum.

    Best-first (rather than first-come) matters next to parked cars: a car driving past overlaps
    a parked one a little, but the parked car's own detection overlaps it far more and wins.
    """
    candidates = [
        (s, r, c) for r, row in enumerate(scores) for c, s in enumerate(row) if s >= minimum
    ]
    candidates.sort(key=lambda item: (-item[0], item[1], item[2]))
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for _, r, c in candidates:
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        pairs.append((r, c))
    return pairs
