"""The training base rebuilt from the registered ONNX, and the vetting of outside checkpoints.

Real parts: the registered yolov8n.onnx from ../shared/models, Ultralytics' own YOLOv8 graph, real
pictures from ../shared/media, and checkpoints written by torch.save. The hostile checkpoint is
one this test writes (no such file can be fetched to try), and the test proves it never runs."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.checkpoint import pickle_globals, vet
from models.registry import resolve_model


@pytest.fixture(scope="module")
def base_model():  # type: ignore[no-untyped-def]
    from models.torch_base import rebuild

    onnx = resolve_model("yolov8n")
    return rebuild(onnx.path, "yolov8n", onnx.class_names), onnx


def test_rebuilt_base_gives_the_exports_outputs_on_real_pictures(base_model) -> None:  # type: ignore[no-untyped-def]
    from models.torch_base import MAX_DEVIATION, deviation_from_onnx, footage_tensors

    model, onnx = base_model
    assert len(footage_tensors()) >= 3  # real pictures, not the random fallback
    assert deviation_from_onnx(model, onnx.path) < MAX_DEVIATION
    assert [model.names[i] for i in range(len(model.names))] == list(onnx.class_names)


def test_adding_ebike_keeps_every_coco_output_and_seeds_it_from_motorcycle(base_model) -> None:  # type: ignore[no-untyped-def]
    import torch

    from models.torch_base import add_classes, footage_tensors

    model, onnx = base_model
    grown = add_classes(model, "yolov8n", ("ebike",))
    assert grown.names[80] == "ebike" and len(grown.names) == 81
    sample = torch.from_numpy(footage_tensors()[0])
    with torch.no_grad():
        before = model.eval()(sample)[0].numpy()
        after = grown.eval()(sample)[0].numpy()
    assert after.shape == (1, 4 + 81, before.shape[2])
    np.testing.assert_allclose(after[:, : 4 + 80], before, atol=1e-4)
    motorcycle = 4 + onnx.class_names.index("motorcycle")
    np.testing.assert_allclose(after[:, 4 + 80], before[:, motorcycle], atol=1e-4)


def test_a_saved_checkpoint_is_vetted_without_being_loaded(base_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from models.torch_base import save_checkpoint

    model, _ = base_model
    first = save_checkpoint(model, tmp_path / "a.pt", source="test")
    names = set(pickle_globals(first))
    assert "ultralytics.nn.tasks.DetectionModel" in names and "collections.OrderedDict" in names
    copies = []
    for place in ("b", "c"):
        (tmp_path / place).mkdir()
        copies.append(tmp_path / place / "a.pt")
        copies[-1].write_bytes(first.read_bytes())
    assert vet(first, copies).accepted
    lone = vet(first, copies[:1])
    assert not lone.accepted and "2 identical copies; at least 3" in lone.problems[0]
    other = tmp_path / "other.pt"
    other.write_bytes(first.read_bytes() + b"appended")
    assert any("other bytes" in p for p in vet(first, [*copies, other]).problems)


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("hostile/data.pkl", pickle.dumps({"model": _Hostile(marker)}, protocol=2))
    copies = []
    for place in ("b", "c"):
        (tmp_path / place).mkdir()
        copies.append(tmp_path / place / "hostile.pt")
        copies[-1].write_bytes(hostile.read_bytes())
    result = vet(hostile, copies)
    assert not result.accepted and result.refused == ["posix.system"]
    assert "globals outside torch, ultralytics, collections: posix.system" in result.problems[-1]
    assert not marker.exists()
    plain = tmp_path / "legacy.pt"
    plain.write_bytes(pickle.dumps({"a": 1}))
    assert "not a zip archive" in vet(plain, []).problems[-1]


def test_vet_checkpoint_accepts_three_copies_of_the_base_and_refuses_one(base_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from models.torch_base import save_checkpoint
    from tests.support import PROJECT_ROOT

    model, _ = base_model
    first = save_checkpoint(model, tmp_path / "yolov8n.pt", source="test")
    copies = []
    for place in ("mirror-a", "mirror-b"):
        (tmp_path / place).mkdir()
        copies += ["--copy", str(tmp_path / place / "yolov8n.pt")]
        (tmp_path / place / "yolov8n.pt").write_bytes(first.read_bytes())
    command = [sys.executable, "-m", "sharpeyes", "models", "vet-checkpoint", str(first)]
    accepted = subprocess.run([*command, *copies], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "accepted" in accepted.stdout and "checkpoint_sha256:" in accepted.stdout
    alone = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert alone.returncode == 1 and "at least 3" in alone.stdout
