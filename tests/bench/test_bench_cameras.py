"""`sharpeyes bench cameras`: the stand-in servers' cost and the readers' cost per way of opening a
stream, on a real GStreamer server and real FFmpeg readers. A benchmark is not a timed test: this
checks the figures exist and that each reader style received every stream's frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(180)
def test_bench_cameras_reports_each_reader_style_with_every_frame_delivered(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sharpeyes", "bench", "cameras", "--cameras", "2", "--seconds", "5", "--servers", "gst",
         "--readers", "edge,pyav-timeout", "--json"],
        check=False, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [(r["server"], r["reader"]) for r in rows] == [("gst", "edge"), ("gst", "pyav-timeout")]
    for row in rows:
        assert row["streams"] == 4  # a main stream and a sub-stream per camera
        assert row["delivered_share"] >= 0.9, row  # 25 + 5 fps per camera, a few frames of jitter at the window's ends
        assert row["cpu_per_stream_s"] > 0 and row["reader_us_per_packet"] > 0
        assert row["reader_switches_per_packet"] >= 0


def test_bench_cameras_refuses_an_unknown_reader_style() -> None:
    from typer.testing import CliRunner

    from sharpeyes.cli import app

    result = CliRunner().invoke(app, ["bench", "cameras", "--readers", "opencv"])
    assert result.exit_code == 2
    assert "--readers takes edge and/or pyav-timeout" in result.output
