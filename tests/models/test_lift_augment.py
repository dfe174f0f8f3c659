"""Lift-view augmentation (models/lift_augment.py) on synthetic pictures: every moved box is checked
against where its painted rectangle really ends up in the warped pixels."""

from __future__ import annotations

import numpy as np
import pytest

from models.lift_augment import (
    HIDDEN,
    View,
    corner_view,
    crop,
    fisheye,
    fisheye_corner,
    lift_views,
    move_boxes,
    occlude,
)

WIDTH, HEIGHT = 320, 240
TOLERANCE_PX = 1.5  # linear interpolation blurs an edge by a pixel; the threshold finds its middle


def _painted(box: tuple[float, float, float, float], value: int = 255) -> np.ndarray:
    """A black picture with BOX (normalised) filled in VALUE: pixel i covers [i, i + 1)."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x1, y1, x2, y2 = (round(v) for v in np.multiply(box, [WIDTH, HEIGHT, WIDTH, HEIGHT]))
    image[y1:y2, x1:x2] = value
    return image


def _extent(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The pixel extent (x1, y1, x2, y2, pixel edges) of what is brighter than half in IMAGE."""
    bright = image.max(axis=2) > 127 if mask is None else mask
    ys, xs = np.nonzero(bright)
    assert len(xs), "the painted rectangle is gone"
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


def _assert_box_on_paint(view: View, index: int = 0) -> None:
    height, width = view.image.shape[:2]
    moved = view.boxes[index] * [width, height, width, height]
    measured = _extent(view.image)
    assert np.abs(moved - measured).max() <= TOLERANCE_PX, (view.kind, moved.round(1), measured)


# Boxes in the middle, near a corner (where a fisheye bends most) and along an edge; exact pixels.
BOXES = [(0.40, 0.40, 0.60, 0.70), (0.05, 0.05, 0.30, 0.25), (0.70, 0.60, 0.95, 0.95), (0.0, 0.3, 0.2, 1.0)]


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("k", [0.15, 0.5])
def test_fisheye_moves_a_box_where_its_pixels_go(box: tuple[float, ...], k: float) -> None:
    view = fisheye(_painted(box), np.array([0]), np.array([box]), k)  # type: ignore[arg-type]
    assert view.image.shape == (HEIGHT, WIDTH, 3) and list(view.classes) == [0]
    _assert_box_on_paint(view)
    if box[0] == 0.05:  # a corner box is pulled towards the centre and shrinks
        assert view.boxes[0][0] > box[0] and view.boxes[0][2] - view.boxes[0][0] < box[2] - box[0]
    # The frame's corners go black, as on a fisheye dome.
    assert view.image[0, 0].max() == 0 and view.image[-1, -1].max() == 0


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("narrow", ["top", "bottom"])
def test_the_corner_squeeze_moves_a_box_where_its_pixels_go(box: tuple[float, ...], narrow: str) -> None:
    view = corner_view(_painted(box), np.array([3]), np.array([box]), 0.22, 0.08, narrow=narrow)  # type: ignore[arg-type]
    assert list(view.classes) == [3]
    _assert_box_on_paint(view)


@pytest.mark.parametrize("box", BOXES)
def test_a_fisheye_seen_from_a_corner_moves_a_box_where_its_pixels_go(box: tuple[float, ...]) -> None:
    view = fisheye_corner(_painted(box), np.array([0]), np.array([box]), 0.45, 0.2, 0.06)  # type: ignore[arg-type]
    _assert_box_on_paint(view)


def test_a_crop_keeps_the_box_exactly_and_drops_one_pushed_out_of_frame() -> None:
    inside, outside, mostly_out, half_out = (0.4, 0.4, 0.6, 0.7), (0.0, 0.0, 0.1, 0.1), \
        (0.2, 0.4, 0.35, 0.6), (0.3, 0.8, 0.5, 1.0)
    image = _painted(inside)
    boxes = np.array([inside, outside, mostly_out, half_out])
    # Window x 98..258, y 60..216: the first box whole, the second not at all, the third (x 64..112 px)
    # 14 of its 48 px wide, the fourth (y 192..240) half of its height.
    window = (98, 60, 258, 216)
    view = crop(image, np.array([0, 1, 2, 3]), boxes, window)
    assert view.image.shape == (156, 160, 3)
    assert 1 not in view.classes  # out of frame: dropped
    _assert_box_on_paint(View(view.image, view.classes[:1], view.boxes[:1], view.kind))
    kept = dict(zip(view.classes.tolist(), view.boxes, strict=True))
    assert np.allclose(kept[2] * [160, 156, 160, 156], [0, 36, 14, 84])  # more than MIN_VISIBLE in: clipped
    assert np.allclose(kept[3] * [160, 156, 160, 156], [0, 132, 62, 156])
    # A sliver (2 px of the third box) is dropped.
    sliver = crop(image, np.array([2]), np.array([mostly_out]), (110, 60, 260, 220))
    assert len(sliver.classes) == 0 and sliver.boxes.shape == (0, 4)


def test_a_box_moved_out_of_the_frame_is_dropped_and_one_left_in_is_clipped() -> None:
    boxes = np.array([(0.1, 0.1, 0.3, 0.3), (0.6, 0.6, 0.9, 0.9), (0.45, 0.45, 0.55, 0.55)])

    def shift(points: np.ndarray) -> np.ndarray:
        return np.asarray(points + [0.5 * WIDTH, 0.0])

    classes, moved = move_boxes(np.array([0, 1, 2]), boxes, (WIDTH, HEIGHT), (WIDTH, HEIGHT), shift)
    assert classes.tolist() == [0, 2]  # the second left the frame to the right
    assert np.allclose(moved, [(0.6, 0.1, 0.8, 0.3), (0.95, 0.45, 1.0, 0.55)])  # the third clipped, half in
    classes, moved = move_boxes(np.array([0]), boxes[:1], (WIDTH, HEIGHT), (WIDTH, HEIGHT),
                                lambda p: np.asarray(p * 0.01))  # shrunk to a speck
    assert classes.tolist() == [] and moved.shape == (0, 4)


@pytest.mark.parametrize("seed", range(6))
def test_every_copy_of_the_mixed_views_has_its_box_on_its_pixels(seed: int) -> None:
    box = (0.35, 0.3, 0.62, 0.8)
    views = lift_views(_painted(box), np.array([0]), np.array([box]), np.random.default_rng(seed), copies=3)
    assert len(views) == 3
    # Three copies: one of each geometry, whatever the drawn start.
    assert sorted(v.kind.split("(")[0] for v in views) == ["corner", "crop", "fisheye"]
    for view in views:
        assert list(view.classes) == [0]
        _assert_box_on_paint(view)


GREEN = np.array([0, 255, 0], np.uint8)


def _green_box_picture(box: tuple[float, float, float, float]) -> np.ndarray:
    image = np.full((HEIGHT, WIDTH, 3), 230, np.uint8)  # a bright wall
    x1, y1, x2, y2 = (round(v) for v in np.multiply(box, [WIDTH, HEIGHT, WIDTH, HEIGHT]))
    image[y1:y2, x1:x2] = GREEN
    return image


@pytest.mark.parametrize("shape", ["door", "person"])
def test_an_occluder_hides_a_fifth_to_under_half_of_the_ebike_never_all_and_keeps_its_label(shape: str) -> None:
    box = (0.3, 0.25, 0.7, 0.85)
    x1, y1, x2, y2 = (round(v) for v in np.multiply(box, [WIDTH, HEIGHT, WIDTH, HEIGHT]))
    for seed in range(40):
        view = View(_green_box_picture(box), np.array([0, 1]), np.array([box, (0.0, 0.0, 0.2, 0.2)]), "plain")
        hidden = occlude(view, 0, np.random.default_rng(seed), shape=shape)  # type: ignore[arg-type]
        assert 0 in hidden.classes.tolist() and np.allclose(hidden.boxes[0], box)
        region = hidden.image[y1:y2, x1:x2]
        still_green = (np.abs(region.astype(int) - GREEN).max(axis=2) < 40).mean()
        assert 0.55 - 0.02 <= still_green <= 0.80 + 0.02, (seed, still_green)  # 20-45 % covered
        # The occluder is one grey or dark tone (with grain), not a colour.
        covered = region[np.abs(region.astype(int) - GREEN).max(axis=2) >= 40].astype(int)
        assert (covered.max(axis=1) - covered.min(axis=1)).max() == 0
        assert f"occluded-{shape}" in hidden.kind


def test_another_box_the_occluder_hides_loses_its_label() -> None:
    ebike = (0.1, 0.1, 0.9, 0.9)
    left, right = (0.12, 0.4, 0.15, 0.5), (0.85, 0.4, 0.88, 0.5)  # small boxes at either side of the e-bike
    for seed in range(10):
        view = View(_green_box_picture(ebike), np.array([0, 1, 1]), np.array([ebike, left, right]), "plain")
        hidden = occlude(view, 0, np.random.default_rng(seed), shape="door")
        # The door panel comes in from one side: the box on that side is hidden (> HIDDEN) and dropped.
        assert hidden.classes.tolist() == [0, 1] and HIDDEN < 1
        assert np.allclose(hidden.boxes[0], ebike)


def test_copies_with_ebikes_get_occluders_and_keep_every_ebike_label() -> None:
    box = (0.3, 0.25, 0.7, 0.85)
    kinds = []
    for seed in range(8):
        for view in lift_views(_green_box_picture(box), np.array([7]), np.array([box]), np.random.default_rng(seed),
                               copies=3, occlude_classes=frozenset({7})):
            assert view.classes.tolist() == [7]
            kinds.append(view.kind)
    assert any("occluded-door" in k for k in kinds) and any("occluded-person" in k for k in kinds)
    assert any("occluded" not in k for k in kinds)


def test_the_same_seed_gives_the_same_pictures_and_another_seed_others() -> None:
    rng = np.random.default_rng(99)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    classes, boxes = np.array([0, 1]), np.array([(0.3, 0.25, 0.7, 0.85), (0.05, 0.1, 0.3, 0.6)])

    def run(seed: int) -> list[View]:
        return lift_views(image, classes, boxes, np.random.default_rng(seed), copies=4, occlude_classes=frozenset({0}))

    first, again, other = run(5), run(5), run(6)
    assert len(first) == 4
    for a, b in zip(first, again, strict=True):
        assert a.kind == b.kind and np.array_equal(a.image, b.image)
        assert np.array_equal(a.classes, b.classes) and np.array_equal(a.boxes, b.boxes)
    assert any(a.kind != b.kind or a.image.shape != b.image.shape or not np.array_equal(a.image, b.image)
               for a, b in zip(first, other, strict=True))


def test_a_picture_without_boxes_still_gets_its_copies() -> None:
    views = lift_views(_painted((0.4, 0.4, 0.6, 0.6)), np.zeros(0, int), np.zeros((0, 4)), np.random.default_rng(1),
                       copies=3, occlude_classes=frozenset({0}))
    assert len(views) == 3 and all(v.boxes.shape == (0, 4) and len(v.classes) == 0 for v in views)


def test_bad_parameters_are_refused() -> None:
    image, classes, boxes = _painted((0.4, 0.4, 0.6, 0.6)), np.array([0]), np.array([(0.4, 0.4, 0.6, 0.6)])
    with pytest.raises(ValueError, match="pincushion"):
        fisheye(image, classes, boxes, -0.1)
    with pytest.raises(ValueError, match="insets"):
        corner_view(image, classes, boxes, 0.5, 0.1)
    with pytest.raises(ValueError, match="not inside"):
        crop(image, classes, boxes, (0, 0, WIDTH + 1, HEIGHT))
