"""`sharpeyes bench detector` on the real model and the street clip: it runs and reports each size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_detector_reports_each_size_against_the_square(shared_media: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sharpeyes", "bench", "detector", "--widths", "640,480", "--rounds", "1", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["input"] for r in rows] == ["640x640 (square)", "640x384", "480x288"]
    assert rows[0]["vs_square"] == 1.0 and all(r["cpu_ms"] > 0 for r in rows)
    # What each size still sees of the parked row (the fire-lane profile uses 480).
    assert all(r["kerb_vehicles"] >= 3 for r in rows)
