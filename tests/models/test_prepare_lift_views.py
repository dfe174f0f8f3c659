"""`models.training.prepare` with `--lift-augment N`: N lift-view copies of every training picture, as
real jpg and label files in the work folder, and none of the held-out part. Synthetic pictures and a
stand-in labeller: no model is loaded and nothing is trained."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from models.detector import Detection
from models.evaluation import Dataset, LabelledImage, load_dataset
from models.train_settings import TrainSettings
from models.training import prepare

MODEL_NAMES = ("person", "bicycle", "car", "motorcycle", "ebike")  # the dataset's ebike is class 4 here
EBIKE, PERSON, CAR = 4, 0, 2


class CarLabeller:
    """Stands in for the base model: one sure car in the top left of every picture."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        return [Detection("car", CAR, 0.9, (0.02 * width, 0.02 * height, 0.22 * width, 0.2 * height))]


def _dataset(root: Path, pictures: int = 6) -> Dataset:
    """PICTURES pictures, each with an e-bike (class 0) and a person (class 1) of the dataset's own ids."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = []
    for index in range(pictures):
        image = rng.integers(60, 200, (180 + 10 * index, 240, 3), dtype=np.uint8)
        path = root / "images" / f"p{index}.jpg"
        cv2.imwrite(str(path), image)
        boxes = np.array([(0.3, 0.35, 0.7, 0.95), (0.55, 0.1, 0.8, 0.9)])
        images.append(LabelledImage(path, np.array([0, 1]), boxes))
    return Dataset(root, {0: "ebike", 1: "person"}, images)


def _labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


def _prepare(tmp_path: Path, work: str, copies: int, *, labeller: object | None = None, seed: int = 0) -> Path:
    dataset = _dataset(tmp_path / f"set-{work}")
    prepared = prepare(dataset, [0, 1, 2, 3], [4, 5], MODEL_NAMES, tmp_path / work, labeller=labeller, rehearsal=[],
                       progress=lambda line: None, lift_augment=copies, seed=seed)
    assert prepared.lift_augmented == 4 * copies
    return prepared.spec.parent


@pytest.mark.parametrize("copies", [1, 3])
def test_n_copies_per_training_picture_and_none_of_the_held_out_part(tmp_path: Path, copies: int) -> None:
    work = _prepare(tmp_path, "work", copies)
    train = sorted(p.name for p in (work / "images" / "train").iterdir())
    held = sorted(p.name for p in (work / "images" / "val").iterdir())
    assert held == ["p4.jpg", "p5.jpg"]  # the held-out part: its own pictures, no copy
    assert sorted(p.name for p in (work / "labels" / "val").iterdir()) == ["p4.txt", "p5.txt"]
    assert not any("lift" in name for name in held)
    for stem in ("p0", "p1", "p2", "p3"):
        copies_of = [name for name in train if name.startswith(f"lift-{stem}-")]
        assert sorted(copies_of) == [f"lift-{stem}-{k}.jpg" for k in range(copies)]
        assert f"{stem}.jpg" in train
    assert not any(name.startswith(("lift-p4", "lift-p5")) for name in train)
    assert len(train) == 4 + 4 * copies
    for name in (n for n in train if n.startswith("lift-")):
        picture = cv2.imread(str(work / "images" / "train" / name))
        assert picture is not None and not (work / "images" / "train" / name).is_symlink()  # a real jpg
        rows = _labels(work / "labels" / "train" / name.replace(".jpg", ".txt"))
        # The e-bike keeps its label in every copy (a crop centres on it, the occluder never hides it all),
        # in the model's class space.
        assert EBIKE in [int(r[0]) for r in rows] and {int(r[0]) for r in rows} <= {EBIKE, PERSON}
        for _, cx, cy, w, h in rows:
            assert 0 <= cx - w / 2 and cx + w / 2 <= 1 and 0 <= cy - h / 2 and cy + h / 2 <= 1 and w > 0 and h > 0
    # Ultralytics reads the same layout: data.yaml's train and val folders.
    spec = yaml.safe_load((work / "data.yaml").read_text())
    assert (spec["train"], spec["val"], spec["names"][EBIKE]) == ("images/train", "images/val", "ebike")
    assert load_dataset(work).images  # and so does the product's own reader


def test_off_by_default_writes_what_it_wrote_before(tmp_path: Path) -> None:
    assert TrainSettings(data=(tmp_path,)).lift_augment == 0
    work = _prepare(tmp_path, "work", 0)
    assert sorted(p.name for p in (work / "images" / "train").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    assert (work / "labels" / "train" / "p0.txt").read_text() == \
        "4 0.500000 0.650000 0.400000 0.600000\n0 0.675000 0.500000 0.250000 0.800000\n"


def test_pseudo_labels_move_with_the_picture_and_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    first = _prepare(tmp_path, "first", 3, labeller=CarLabeller(), seed=4)
    again = _prepare(tmp_path, "again", 3, labeller=CarLabeller(), seed=4)
    other = _prepare(tmp_path, "other", 3, labeller=CarLabeller(), seed=5)

    def digest(work: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((work / "images" / "train").glob("lift-*"))} | \
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((work / "labels" / "train").glob("lift-*"))}

    assert digest(first) == digest(again) and digest(first) != digest(other)
    original = _labels(first / "labels" / "train" / "p0.txt")
    assert [int(r[0]) for r in original] == [EBIKE, PERSON, CAR]  # the base's sure car is a pseudo-label
    cars = [r for p in (first / "labels" / "train").glob("lift-*.txt") for r in _labels(p) if int(r[0]) == CAR]
    # The car is carried into the copies, moved with the pixels (a crop round the e-bike may leave it out).
    assert cars and any(r[1:] != original[2][1:] for r in cars)


def test_the_training_record_names_the_lever_and_n(tmp_path: Path) -> None:
    from models.training import Prepared, levers

    settings = TrainSettings(data=(tmp_path,), lift_augment=3)
    assert levers(settings, Prepared(tmp_path / "data.yaml", 1, 27, 39)) == \
        {"lift_augment": {"copies_per_picture": 3, "pictures": 39}}
    assert levers(TrainSettings(data=(tmp_path,)), Prepared(tmp_path / "data.yaml", 1, 27)) == \
        {"lift_augment": {"copies_per_picture": 0, "pictures": 0}}


def test_the_commands_take_lift_augment() -> None:
    from typer.testing import CliRunner

    from models.cli import app

    for command in ("train", "eval-seeds"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "--lift-augment" in result.output
    refused = CliRunner().invoke(app, ["train", "--data", ".", "--name", "x", "--lift-augment", "-1"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "Invalid value for '--lift-augment'" in refused.output


def test_eval_seeds_refuses_to_reuse_a_model_trained_with_another_lift_augment(monkeypatch: pytest.MonkeyPatch,
                                                                              tmp_path: Path) -> None:
    from types import SimpleNamespace

    from models import gate_figures, registry
    from models.registry import ModelEntry
    from models.seeds import SeedsReport, run_seeds
    from models.train_settings import TrainingError

    entry = ModelEntry(name="aug-s0", file="aug-s0.onnx", sha256="0" * 64, input_size=(640, 640), decoder="yolov8",
                       color="rgb", licence="test", classes="aug-s0.names", providers="any",
                       trained={"settings": {"seed": 0, "lift_augment": 0}, "split": {"held_out": []}})
    monkeypatch.setattr(registry, "load_registry", lambda: SimpleNamespace(models=[entry]))
    monkeypatch.setattr(gate_figures, "load_sets", lambda data: (None, []))
    with pytest.raises(TrainingError, match="trained with --lift-augment 0, not 3"):
        run_seeds([tmp_path], [0], prefix="aug", epochs=1, conf=0.35, reuse=True, progress=lambda line: None,
                  lift_augment=3)
    assert SeedsReport(conf=0.35, epochs=15, lift_augment=3).to_json()["lift_augment"] == 3
