"""A bench child that dies mid-run leaves its records, and the parent says how it ended instead of
a bare "edge wrote no results" (issue 28, run 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sharpeyes.bench.edge_bench.measure import _exit_reason


def test_a_killed_child_leaves_partial_records(tmp_path: Path):
    out = tmp_path / "edge.json"
    script = textwrap.dedent(f"""
        from sharpeyes.bench.child import ChildRun
        records = {{"cam": []}}
        child = ChildRun({str(out)!r})
        def counters():
            records["cam"].append([1.0, 2.0, 3.0, 0.1, 1.0])
            return {{}}
        child.run_until_stopped(lambda: True, counters, partial=lambda: {{"samples": records}}, partial_every_s=1.0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not out.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.kill()  # as a crash or the parent's kill after a stop that never came
        proc.wait()
    records = json.loads(out.read_text())
    assert records["partial"] is True and records["samples"]["cam"]
    assert _exit_reason(proc.returncode) == "was killed by SIGKILL during the run"


def test_exit_reasons_are_readable():
    assert _exit_reason(1) == "exited with 1 during the run"
    assert _exit_reason(-signal.SIGTERM, "after SIGTERM") == "was killed by SIGTERM after SIGTERM"
    assert _exit_reason(None) == "was still running"
