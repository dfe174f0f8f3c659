"""Lift-view augmentation: copies of a training picture as other lift cameras would see it (issue 28).

The shared e-bike set is screenshots of lift pictures taken at about eye height, while real lift
CCTV hangs high in a corner, often behind a fisheye lens, and the e-bike is partly hidden by its
rider, other passengers or the door. Each copy is one of three views, with an occluder on top of
an e-bike in some:

- ``fisheye``: radial barrel distortion of a seeded strength (the frame's corners go black, as on a
  fisheye dome), sometimes also seen from a corner (below);
- ``corner``: a perspective squeeze, the top edge narrower (or, less often, wider) with the two
  sides pulled in by different amounts: a camera high in a corner looking down;
- ``crop``: a window round a labelled e-bike (1.3-2.5 times its size), the e-bike large in frame;
- ``occluded-door`` / ``occluded-person``: a filled grey or dark rectangle over 20-45 % of one e-bike
  box, never all of it (a lift door panel from one side, a passenger's back); the e-bike keeps its
  label, and any other box the rectangle hides for the most part loses its own.

Every box is moved by the same mapping as the pixels: its outline is sampled (EDGE_POINTS a side),
mapped, and the enclosing box clipped to the frame; a box that leaves the frame (less than
MIN_VISIBLE of it still inside, or a side under MIN_SIDE_PX) is dropped. Boxes are what
``models.evaluation`` uses: ``x1, y1, x2, y2`` normalised to 0..1, one class id per box.

Pure: numpy and OpenCV on arrays, no I/O; everything random comes from the numpy Generator passed
in, so the same generator state gives the same pictures and boxes.

Coordinates: a picture W pixels wide spans x in [0, W] with pixel i covering [i, i + 1) (so a
normalised box times W is in these units); OpenCV's maps sample at pixel centres, i + 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Floats = NDArray[np.float64]
Classes = NDArray[np.int64]
PointMap = Callable[[Floats], Floats]  # (n, 2) points in pixels -> (n, 2) points in pixels

EDGE_POINTS = 33  # samples per side of a box outline when it is mapped
MIN_SIDE_PX = 3.0  # a moved box narrower or lower than this is dropped
MIN_VISIBLE = 0.25  # ... and so is one with less than this share of its moved area inside the frame
FISHEYE_STRENGTH = (0.15, 0.5)  # k of r_src = r (1 + k r^2), r = 1 at the frame's corner
FISHEYE_CORNER_CHANCE = 0.5  # a fisheye copy is also seen from a corner this often
CORNER_INSET = (0.06, 0.24)  # each end of the narrow edge moves in by this share of the width
CORNER_TOP_NARROW_CHANCE = 0.75  # a camera looking down: the far (top) edge narrower, mostly
CROP_MARGIN = (1.3, 2.5)  # the crop window's sides, as multiples of the e-bike box's
CROP_MIN_SHARE = 0.35  # ... at least this share of the frame's sides
OCCLUDE_SHARE = (0.20, 0.45)  # share of the e-bike box the occluder covers
OCCLUDE_CHANCE = 0.6  # share of copies that get an occluder (where an e-bike is left in them)
HIDDEN = 0.6  # another box the occluder covers this much of loses its label (nothing left to learn)
NOISE = 6.0  # standard deviation of the occluder's grain, in grey levels
GEOMETRIES = ("fisheye", "corner", "crop")
Occluder = Literal["door", "person"]


@dataclass(frozen=True)
class View:
    """One augmented copy: the picture, its classes and boxes (x1, y1, x2, y2 in 0..1) and how it was made."""

    image: Image
    classes: Classes
    boxes: Floats
    kind: str


def _size(image: Image) -> tuple[int, int]:
    height, width = image.shape[:2]
    return int(width), int(height)


def _outline(boxes_px: Floats) -> Floats:
    """(n, 4 * EDGE_POINTS, 2): points along each box's four sides."""
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    x1, y1, x2, y2 = (boxes_px[:, i : i + 1] for i in range(4))
    xs = np.concatenate([x1 + (x2 - x1) * t, np.broadcast_to(x2, (len(boxes_px), EDGE_POINTS)),
                         x2 - (x2 - x1) * t, np.broadcast_to(x1, (len(boxes_px), EDGE_POINTS))], axis=1)
    ys = np.concatenate([np.broadcast_to(y1, (len(boxes_px), EDGE_POINTS)), y1 + (y2 - y1) * t,
                         np.broadcast_to(y2, (len(boxes_px), EDGE_POINTS)), y2 - (y2 - y1) * t], axis=1)
    return np.stack([xs, ys], axis=2)


def move_boxes(classes: Classes, boxes: Floats, src_size: tuple[int, int], dst_size: tuple[int, int],
               forward: PointMap) -> tuple[Classes, Floats]:
    """BOXES (normalised to SRC_SIZE) moved by FORWARD (source pixels -> destination pixels): the box
    enclosing each mapped outline, clipped to DST_SIZE and normalised to it; boxes that end up
    (mostly) outside the frame or smaller than MIN_SIDE_PX are dropped with their classes."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if not len(boxes):
        return classes[:0], boxes[:0]
    (sw, sh), (dw, dh) = src_size, dst_size
    outline = _outline(boxes * np.array([sw, sh, sw, sh], dtype=float))
    moved = forward(outline.reshape(-1, 2)).reshape(outline.shape)
    whole = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)  # x1, y1, x2, y2
    clipped = whole.clip(0, [dw, dh, dw, dh])
    side_w, side_h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (whole[:, 2] - whole[:, 0]) * (whole[:, 3] - whole[:, 1])
    keep = (side_w >= MIN_SIDE_PX) & (side_h >= MIN_SIDE_PX) & (side_w * side_h >= MIN_VISIBLE * np.maximum(area, 1e-9))
    return classes[keep], clipped[keep] / np.array([dw, dh, dw, dh], dtype=float)


# --- radial (barrel) distortion ----------------------------------------------------------------

def _fisheye_radius(r_src: Floats, k: float) -> Floats:
    """The destination radius r of a source radius: the real root of k r^3 + r - r_src = 0 (Cardano;
    one real root, since the cubic rises everywhere for k > 0)."""
    if k == 0:
        return r_src
    p, q = 1.0 / k, -r_src / k
    root = np.sqrt(q * q / 4 + p**3 / 27)
    return np.asarray(np.cbrt(-q / 2 + root) + np.cbrt(-q / 2 - root), dtype=float)


def fisheye_warp(image: Image, k: float) -> tuple[Image, PointMap]:
    """Barrel distortion of strength K (0: none; 0.5: a corner samples from 1.5 times as far out):
    a destination point at normalised radius r shows the source at r (1 + k r^2), r = 1 at the
    corner, so the centre is magnified, straight lines bow outwards and the corners go black. The
    warped picture and the map of source points to where they are shown."""
    if k < 0:
        raise ValueError(f"fisheye strength {k} < 0 (a pincushion is not a lift camera)")
    width, height = _size(image)
    centre = np.array([width / 2, height / 2])
    reach = float(np.hypot(width / 2, height / 2))
    xs, ys = np.meshgrid(np.arange(width, dtype=float) + 0.5, np.arange(height, dtype=float) + 0.5)
    dx, dy = xs - centre[0], ys - centre[1]
    scale = 1 + k * (dx * dx + dy * dy) / reach**2
    map_x = (centre[0] + dx * scale - 0.5).astype(np.float32)
    map_y = (centre[1] + dy * scale - 0.5).astype(np.float32)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def forward(points: Floats) -> Floats:
        offset = points - centre
        r_src = np.hypot(offset[:, 0], offset[:, 1]) / reach
        r_dst = _fisheye_radius(r_src, k)
        ratio = np.divide(r_dst, r_src, out=np.ones_like(r_src), where=r_src > 0)
        return np.asarray(centre + offset * ratio[:, None], dtype=float)

    return np.asarray(warped, dtype=np.uint8), forward


def fisheye(image: Image, classes: Classes, boxes: Floats, k: float) -> View:
    """IMAGE through fisheye_warp, its boxes moved along."""
    warped, forward = fisheye_warp(image, k)
    size = _size(image)
    moved_classes, moved = move_boxes(classes, boxes, size, size, forward)
    return View(warped, moved_classes, moved, f"fisheye(k={k:.2f})")


# --- a camera high in a corner: perspective squeeze --------------------------------------------

def corner_warp(image: Image, left: float, right: float, narrow: Literal["top", "bottom"] = "top") -> tuple[Image, PointMap]:
    """A perspective squeeze: the NARROW edge's ends move in by LEFT and RIGHT (shares of the width),
    the other edge stays; unequal insets look like a camera high in one corner of the car. The
    warped picture and the map of source points to where they are shown."""
    if not (0 <= left < 0.5 and 0 <= right < 0.5):
        raise ValueError(f"insets {left}, {right}: each must be in [0, 0.5)")
    width, height = _size(image)
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    dst = src.copy()
    row = (0, 1) if narrow == "top" else (3, 2)
    dst[row[0], 0] += left * width
    dst[row[1], 0] -= right * width
    matrix = cv2.getPerspectiveTransform(src, dst).astype(float)  # in pixel-edge coordinates
    # OpenCV samples at pixel centres: the same mapping in pixel-index coordinates.
    shift, unshift = np.eye(3), np.eye(3)
    shift[:2, 2], unshift[:2, 2] = 0.5, -0.5
    warped = cv2.warpPerspective(image, unshift @ matrix @ shift, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def forward(points: Floats) -> Floats:
        mapped = np.column_stack([points, np.ones(len(points))]) @ matrix.T
        return np.asarray(mapped[:, :2] / mapped[:, 2:3], dtype=float)

    return np.asarray(warped, dtype=np.uint8), forward


def corner_view(image: Image, classes: Classes, boxes: Floats, left: float, right: float, *,
                narrow: Literal["top", "bottom"] = "top") -> View:
    """IMAGE through corner_warp, its boxes moved along."""
    warped, forward = corner_warp(image, left, right, narrow)
    size = _size(image)
    moved_classes, moved = move_boxes(classes, boxes, size, size, forward)
    return View(warped, moved_classes, moved, f"corner({narrow} {left:.2f}/{right:.2f})")


def fisheye_corner(image: Image, classes: Classes, boxes: Floats, k: float, left: float, right: float) -> View:
    """A fisheye camera high in a corner: fisheye_warp, then corner_warp (top edge narrow). The box
    outlines go through both maps before the enclosing box is taken (the box round a bent outline,
    squeezed again, would be looser than the squeezed outline's)."""
    bent, first = fisheye_warp(image, k)
    warped, second = corner_warp(bent, left, right)
    size = _size(image)
    moved_classes, moved = move_boxes(classes, boxes, size, size, lambda points: second(first(points)))
    return View(warped, moved_classes, moved, f"fisheye(k={k:.2f})+corner(top {left:.2f}/{right:.2f})")


# --- a crop round an e-bike --------------------------------------------------------------------

def crop(image: Image, classes: Classes, boxes: Floats, window: tuple[int, int, int, int]) -> View:
    """The pixels of WINDOW (x1, y1, x2, y2 in pixels, inside the frame), at their own size."""
    width, height = _size(image)
    x1, y1, x2, y2 = (int(v) for v in window)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(f"crop window {window} is not inside the {width}x{height} frame")
    origin = np.array([x1, y1], dtype=float)
    moved_classes, moved = move_boxes(classes, boxes, (width, height), (x2 - x1, y2 - y1),
                                      lambda points: np.asarray(points - origin, dtype=float))
    return View(np.ascontiguousarray(image[y1:y2, x1:x2]), moved_classes, moved, f"crop({x1},{y1},{x2},{y2})")


def crop_window(width: int, height: int, box: Floats, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A window holding BOX (normalised), its sides CROP_MARGIN times the box's (at least CROP_MIN_SHARE
    of the frame's), placed at random where it still holds the box."""
    bx1, by1, bx2, by2 = (float(v) for v in np.asarray(box) * [width, height, width, height])
    margin = rng.uniform(*CROP_MARGIN, size=2)
    win_w = int(min(width, max(CROP_MIN_SHARE * width, (bx2 - bx1) * margin[0])))
    win_h = int(min(height, max(CROP_MIN_SHARE * height, (by2 - by1) * margin[1])))
    # Left edge between (box's right - window) and the box's left, inside the frame.
    low_x, high_x = max(0, int(np.ceil(bx2)) - win_w), min(int(bx1), width - win_w)
    low_y, high_y = max(0, int(np.ceil(by2)) - win_h), min(int(by1), height - win_h)
    x1 = int(rng.integers(low_x, high_x + 1)) if high_x >= low_x else max(0, min(int(bx1), width - win_w))
    y1 = int(rng.integers(low_y, high_y + 1)) if high_y >= low_y else max(0, min(int(by1), height - win_h))
    return x1, y1, x1 + win_w, y1 + win_h


# --- occlusion ---------------------------------------------------------------------------------

def occluder_rect(width: int, height: int, box: Floats, share: float, shape: Occluder,
                  rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A rectangle (pixels) covering about SHARE of BOX (normalised), never all of it: a door panel
    (the box's full height and beyond, from its left or right side) or a passenger (a block
    narrower than the box, from its top or bottom)."""
    if not 0 < share < 1:
        raise ValueError(f"occluded share {share} must be in (0, 1)")
    bx1, by1, bx2, by2 = np.asarray(box, dtype=float) * [width, height, width, height]
    bw, bh = bx2 - bx1, by2 - by1
    if shape == "door":
        cover = share * bw
        outside = rng.uniform(0.0, 0.5) * bw  # the panel goes on past the box's side
        x1, x2 = (bx1 - outside, bx1 + cover) if rng.random() < 0.5 else (bx2 - cover, bx2 + outside)
        y1, y2 = by1 - rng.uniform(0.0, 0.3) * bh, by2 + rng.uniform(0.0, 0.1) * bh
    else:
        wide = rng.uniform(max(share, 0.3), 0.8)  # the passenger's width, as a share of the box's
        tall = share / wide
        x1 = bx1 + rng.uniform(0.0, 1.0 - wide) * bw
        x2 = x1 + wide * bw
        y1, y2 = (by1 - rng.uniform(0.0, 0.3) * bh, by1 + tall * bh) if rng.random() < 0.5 else \
                 (by2 - tall * bh, by2 + rng.uniform(0.0, 0.1) * bh)
    rect = np.array([x1, y1, x2, y2]).round().clip(0, [width, height, width, height]).astype(int)
    return int(rect[0]), int(rect[1]), int(rect[2]), int(rect[3])


def covered_share(rect: tuple[int, int, int, int], boxes: Floats, width: int, height: int) -> Floats:
    """The share of each box's area (normalised boxes) inside RECT (pixels)."""
    px = np.asarray(boxes, dtype=float).reshape(-1, 4) * [width, height, width, height]
    iw = (np.minimum(px[:, 2], rect[2]) - np.maximum(px[:, 0], rect[0])).clip(0)
    ih = (np.minimum(px[:, 3], rect[3]) - np.maximum(px[:, 1], rect[1])).clip(0)
    area = (px[:, 2] - px[:, 0]) * (px[:, 3] - px[:, 1])
    return np.asarray(np.divide(iw * ih, area, out=np.zeros_like(area), where=area > 0), dtype=float)


def occlude(view: View, target: int, rng: np.random.Generator, *, share: float | None = None,
            shape: Occluder | None = None) -> View:
    """VIEW with box TARGET partly hidden: a filled rectangle of one grey (door: 100-190) or dark
    (person: 15-80) tone with a little grain, over SHARE (default: OCCLUDE_SHARE, drawn) of it. The
    target keeps its label; another box hidden for more than HIDDEN loses its own."""
    width, height = _size(view.image)
    share = float(rng.uniform(*OCCLUDE_SHARE)) if share is None else share
    chosen: Occluder = shape if shape is not None else ("door" if rng.random() < 0.5 else "person")
    rect = occluder_rect(width, height, view.boxes[target], share, chosen, rng)
    x1, y1, x2, y2 = rect
    tone = rng.uniform(100, 190) if chosen == "door" else rng.uniform(15, 80)
    image = view.image.copy()
    patch = image[y1:y2, x1:x2]
    grain = rng.normal(0.0, NOISE, size=patch.shape[:2])
    fill = (tone + grain).clip(0, 255).astype(np.uint8)
    patch[...] = fill[..., None] if patch.ndim == 3 else fill
    hidden = covered_share(rect, view.boxes, width, height)
    keep = (hidden <= HIDDEN) | (np.arange(len(view.boxes)) == target)
    return View(image, view.classes[keep], view.boxes[keep], f"{view.kind}+occluded-{chosen}({hidden[target]:.2f})")


# --- the copies of one training picture --------------------------------------------------------

def lift_views(image: Image, classes: Classes, boxes: Floats, rng: np.random.Generator, *, copies: int,
               occlude_classes: frozenset[int] = frozenset()) -> list[View]:
    """COPIES lift views of IMAGE with its boxes moved along: the geometries in turn (fisheye, corner,
    crop, from a drawn start, so three copies give one of each), each with an occluder over one box
    of OCCLUDE_CLASSES (the e-bikes) in OCCLUDE_CHANCE of them. A crop centres on a box of
    OCCLUDE_CLASSES (any box where there is none; a random window on a picture without boxes)."""
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    width, height = _size(image)
    start = int(rng.integers(len(GEOMETRIES)))
    views: list[View] = []
    for index in range(copies):
        geometry = GEOMETRIES[(start + index) % len(GEOMETRIES)]
        if geometry == "fisheye":
            k = float(rng.uniform(*FISHEYE_STRENGTH))
            if rng.random() < FISHEYE_CORNER_CHANCE:
                left, right = (float(v) for v in rng.uniform(*CORNER_INSET, size=2))
                view = fisheye_corner(image, classes, boxes, k, left, right)
            else:
                view = fisheye(image, classes, boxes, k)
        elif geometry == "corner":
            left, right = (float(v) for v in rng.uniform(*CORNER_INSET, size=2))
            narrow: Literal["top", "bottom"] = "top" if rng.random() < CORNER_TOP_NARROW_CHANCE else "bottom"
            view = corner_view(image, classes, boxes, left, right, narrow=narrow)
        else:
            focus = [i for i, c in enumerate(classes) if c in occlude_classes] or list(range(len(classes)))
            if focus:
                box = boxes[focus[int(rng.integers(len(focus)))]]
            else:
                share = rng.uniform(0.3, 0.7, size=2)
                box = np.array([0.5 - share[0] / 2, 0.5 - share[1] / 2, 0.5 + share[0] / 2, 0.5 + share[1] / 2])
            view = crop(image, classes, boxes, crop_window(width, height, box, rng))
        targets = [i for i, c in enumerate(view.classes) if c in occlude_classes]
        if targets and rng.random() < OCCLUDE_CHANCE:
            view = occlude(view, targets[int(rng.integers(len(targets)))], rng)
        views.append(view)
    return views
