"""Footprints, polygon membership, overlap and best-first matching."""

from __future__ import annotations

import pytest

from edge.geometry import footprint, greedy_match, iou, normalise_box, point_in_polygon

SQUARE = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
# A concave "U": the notch between its arms is outside.
U_SHAPE = [(0.0, 0.0), (0.3, 0.0), (0.3, 0.6), (0.7, 0.6), (0.7, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


def test_footprint_is_the_bottom_centre() -> None:
    assert footprint((0.2, 0.1, 0.4, 0.9)) == pytest.approx((0.3, 0.9))


@pytest.mark.parametrize(
    ("point", "polygon", "inside"),
    [
        ((0.5, 0.5), SQUARE, True),
        ((0.1, 0.5), SQUARE, False),
        ((0.5, 0.9), SQUARE, False),
        ((0.5, 0.3), U_SHAPE, False),  # in the notch
        ((0.5, 0.8), U_SHAPE, True),
        ((0.1, 0.1), U_SHAPE, True),
        # On the outline counts as inside: a vehicle cut off by the picture's bottom edge has
        # its footprint at y = 1.0 exactly, on a zone drawn to the bottom of the picture.
        ((0.5, 1.0), U_SHAPE, True),
        ((0.2, 0.5), SQUARE, True),
        ((0.8, 0.8), SQUARE, True),
        ((0.5, 0.6), U_SHAPE, True),
        ((0.5, 1.0 + 1e-6), U_SHAPE, False),
    ],
)
def test_point_in_polygon(point, polygon, inside) -> None:
    assert point_in_polygon(point, polygon) is inside


def test_normalise_box_clips_to_the_frame() -> None:
    assert normalise_box((-5, 0, 640, 500), 640, 480) == (0.0, 0.0, 1.0, 1.0)
    assert normalise_box((64, 48, 320, 240), 640, 480) == pytest.approx((0.1, 0.1, 0.5, 0.5))


def test_iou() -> None:
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == pytest.approx(1.0)
    assert iou((0, 0, 1, 1), (1, 1, 2, 2)) == 0.0
    assert iou((0, 0, 2, 1), (1, 0, 3, 1)) == pytest.approx(1 / 3)


def test_greedy_match_takes_the_best_pair_first() -> None:
    # Row 0 overlaps both columns; column 1 is its best, but row 1 needs column 1 even more.
    scores = [[0.5, 0.6], [0.0, 0.9]]
    assert sorted(greedy_match(scores, 0.3)) == [(0, 0), (1, 1)]
    assert greedy_match([[0.2]], 0.3) == []
