"""Grouped splits: the shared e-bike set's re-cropped and same-camera pictures stay on one side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.splits import grouped_split, manifest_groups, picture_groups
from tests.support import SHARED_DIR

DATA = SHARED_DIR / "datasets" / "ebike-elevator"
# The two pairs its SOURCES.md names: the same lift and person cropped differently, and two frames
# of the same lift CCTV camera.
PAIRS = ({"Snipaste_2024-01-01_12-10-05", "Snipaste_2024-01-02_10-32-52"},
         {"Snipaste_2024-01-02_10-31-29", "Snipaste_2024-01-02_10-31-42"})


def test_the_shared_sets_same_scene_pictures_are_grouped_and_nothing_else() -> None:
    images = sorted((DATA / "images").glob("*.jpg"))
    groups = picture_groups(images)
    joined = [{images[i].stem for i in g} for g in groups if len(g) > 1]
    assert sorted(joined, key=sorted) == sorted(PAIRS, key=sorted)
    wanted = [True] * len(images)
    for seed in range(6):
        split = grouped_split(groups, held_out_share=0.25, seed=seed, wanted=wanted)
        assert sorted(split.train + split.held_out) == list(range(len(images)))
        held = {images[i].stem for i in split.held_out}
        for pair in PAIRS:
            assert pair <= held or not pair & held  # never one on each side
        assert 0.2 <= len(split.held_out) / len(images) <= 0.45
    assert grouped_split(groups, held_out_share=0.25, seed=3, wanted=wanted) == \
        grouped_split(groups, held_out_share=0.25, seed=3, wanted=wanted)


def test_a_manifest_groups_by_camera_and_day(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    entries = [{"file": "a.jpg", "camera": "lift-1", "time": "2026-12-01T08:00:00Z"},
               {"file": "b.jpg", "camera": "lift-1", "time": "2026-12-01T19:00:00Z"},
               {"file": "c.jpg", "camera": "lift-1", "time": "2026-12-02T08:00:00Z"},
               {"file": "d.jpg", "camera": "lift-2", "time": "2026-12-01T08:00:00Z"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"images": entries}))
    groups = manifest_groups(tmp_path, [tmp_path / "images" / n for n in names])
    assert sorted(groups) == [[0, 1], [2], [3]]


def test_a_set_with_the_object_in_one_scene_only_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two scenes with it"):
        grouped_split([[0, 1], [2]], held_out_share=0.3, seed=0, wanted=[True, True, False])
