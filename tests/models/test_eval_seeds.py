"""`sharpeyes models eval-seeds` end to end, kept short: one seed, one epoch (about 40 s on 2 cores),
in a model store of its own. The figures themselves (3 seeds, 15 epochs) are in docs/models.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import PROJECT_ROOT, SHARED_DIR

DATA = SHARED_DIR / "datasets" / "ebike-elevator"


def _eval_seeds(store: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHARPEYES_MODEL_DIR": str(store)}
    return subprocess.run([sys.executable, "-m", "sharpeyes", "models", "eval-seeds", "--data", str(DATA),
                           "--seeds", "1", "--epochs", "1", "--name-prefix", "smoke", "--json", *extra],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_eval_seeds_trains_per_seed_and_reports_pooled_figures_with_intervals(tmp_path: Path) -> None:
    result = _eval_seeds(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training smoke-s1 (1 epochs)" in result.stderr and "epoch 1/1" in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["epochs"] == 1 and report["conf"] == 0.35
    (base,), (trained,) = report["base"], report["trained"]
    assert (base["seed"], base["model"], trained["model"]) == (1, "yolov8n", "smoke-s1")
    # Both measured on the same held-out part of seed 1's split: 7 e-bikes (docs/models.md).
    assert base["pictures"] == trained["pictures"] and base["recall"]["trials"] == trained["recall"]["trials"] == 7
    for row in (base, trained):
        for figure in ("recall", "precision", "image_hit_rate"):
            share = row[figure]
            if share["trials"]:
                low, high = share["ci95"]
                assert low <= share["value"] <= high and share["value"] == round(share["successes"] / share["trials"], 3)
    # One seed: the pooled row is that seed's.
    assert report["pooled"]["trained"]["recall"] == trained["recall"]

    again = _eval_seeds(tmp_path)  # the model is registered now: refused unless --reuse
    assert again.returncode == 2 and "--reuse" in again.stdout
    reused = _eval_seeds(tmp_path, "--reuse")
    assert reused.returncode == 0, reused.stderr[-3000:]
    assert json.loads(reused.stdout.strip().splitlines()[-1])["trained"] == report["trained"]


def test_models_eval_gives_every_share_its_interval() -> None:
    from models.intervals import wilson

    result = subprocess.run([sys.executable, "-m", "sharpeyes", "models", "eval", "--data", str(DATA), "--json"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ev = json.loads(result.stdout.strip().splitlines()[-1])
    ebike = next(c for c in ev["classes"] if c["name"] == "ebike")
    (hazard,) = ev["hazards"]
    pairs = [(ebike["precision_ci"], ebike["true_positives"], ebike["predicted"]),
             (ebike["recall_ci"], ebike["true_positives"], ebike["labelled"]),
             (hazard["recall_ci"], hazard["found"], hazard["labelled"]),
             (hazard["image_hit_rate_ci"], hazard["images_hit"], hazard["images_with_object"])]
    for interval, k, n in pairs:
        assert interval == [round(b, 3) for b in wilson(k, n) or ()]
    # The base on the 18 development pictures: 11 of 19 e-bikes, whose interval is wide.
    assert (hazard["found"], hazard["labelled"], hazard["recall_ci"]) == (11, 19, [0.363, 0.769])
    result = subprocess.run([sys.executable, "-m", "sharpeyes", "models", "eval", "--data", str(DATA)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert "95 % CI" in result.stdout and "[0.363, 0.769]" in result.stdout
