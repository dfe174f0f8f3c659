"""Grouped train / held-out splits: no source picture and no camera-day on both sides.

A held-out figure is only worth something if the held-out pictures are new to the model. Frames of
one camera on one day look alike (same view, same light, often the same e-bike), and a picture
cropped or re-encoded twice is the same picture; either on both sides makes the held-out recall a
memory test. Groups come from the dataset's manifest where it has one (``sharpeyes central dataset
export`` writes camera and time per image), else from the pictures themselves: ORB features matched
under a RANSAC homography (a re-crop or re-scale of one scene), or near-equal 32x32 thumbnails.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORB_FEATURES = 1000
RATIO = 0.75  # Lowe's ratio test
SAME_SCENE_INLIERS = 12  # homography inliers that make two pictures one scene (unrelated pairs reach <= 9)
THUMB_MSE = 150.0  # mean squared grey difference of 32x32 thumbnails (0..255) for near-identical frames


@dataclass(frozen=True)
class Split:
    train: list[int]
    held_out: list[int]
    groups: list[list[int]]


def manifest_groups(root: Path, images: Sequence[Path]) -> list[list[int]] | None:
    """Camera-day groups from ROOT/manifest.json ({"images": [{"file", "camera", "time"}]}), or None."""
    path = root / "manifest.json"
    if not path.is_file():
        return None
    entries = {e["file"]: e for e in json.loads(path.read_text(encoding="utf-8")).get("images", [])}
    keys: dict[str, list[int]] = {}
    for index, image in enumerate(images):
        entry = entries.get(str(image.relative_to(root / "images")).replace("\\", "/")) or entries.get(image.name)
        key = f"{entry.get('camera')}/{str(entry.get('time', ''))[:10]}" if entry else f"file:{image.name}"
        keys.setdefault(key, []).append(index)
    return list(keys.values())


def _features(path: Path) -> tuple[np.ndarray, object, np.ndarray | None]:
    import cv2

    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    orb = cv2.ORB.create(nfeatures=ORB_FEATURES)
    keypoints, descriptors = orb.detectAndCompute(grey, None)
    return thumb, keypoints, descriptors


def _same_scene(a: tuple[np.ndarray, object, np.ndarray | None], b: tuple[np.ndarray, object, np.ndarray | None]) -> bool:
    import cv2

    if float(np.mean((a[0] - b[0]) ** 2)) <= THUMB_MSE:
        return True
    if a[2] is None or b[2] is None or len(a[2]) < 2 or len(b[2]) < 2:
        return False
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a[2], b[2], k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < SAME_SCENE_INLIERS:
        return False
    source = np.array([a[1][m.queryIdx].pt for m in good], dtype=np.float32)  # type: ignore[index]
    target = np.array([b[1][m.trainIdx].pt for m in good], dtype=np.float32)  # type: ignore[index]
    _, inliers = cv2.findHomography(source, target, cv2.RANSAC, 5.0)
    return inliers is not None and int(inliers.sum()) >= SAME_SCENE_INLIERS


def picture_groups(images: Sequence[Path]) -> list[list[int]]:
    """Images grouped by scene (union of every pair judged the same scene)."""
    features = [_features(p) for p in images]
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            if root(i) != root(j) and _same_scene(features[i], features[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(images)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def grouped_split(groups: list[list[int]], *, held_out_share: float, seed: int, wanted: Sequence[bool]) -> Split:
    """Whole groups into the held-out part (shuffled with SEED) until it has HELD_OUT_SHARE of the
    images and at least one WANTED image (one with the hazard object); the rest trains. Either part
    empty, or no wanted image left to train on, is refused."""
    order = sorted(groups, key=lambda g: g[0])
    random.Random(seed).shuffle(order)
    total = sum(len(g) for g in groups)
    held: list[int] = []
    train: list[int] = []
    for group in order:
        need_more = len(held) < held_out_share * total or not any(wanted[i] for i in held)
        if need_more and (any(wanted[i] for i in group) or len(held) < held_out_share * total):
            held += group
        else:
            train += group
    if not train or not held or not any(wanted[i] for i in train) or not any(wanted[i] for i in held):
        raise ValueError(f"{total} images in {len(groups)} scene groups cannot be split so that both parts have the "
                         "hazard object; label more pictures (at least two scenes with it)")
    return Split(train=sorted(train), held_out=sorted(held), groups=groups)
