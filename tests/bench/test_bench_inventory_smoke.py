"""`sharpeyes bench inventory` runs end to end at a small size (the figures are the command's, not a test's)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sharpeyes.bench.cli import app


def test_bench_inventory_runs_small() -> None:
    result = CliRunner().invoke(app, ["inventory", "--cameras", "300", "--edges", "10", "--queries", "20", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout[result.stdout.index("{"):])
    assert figures["cameras"] == 300 and figures["push_edges"] == 10 and figures["versions"] == 20
    assert figures["search_p95_ms"] > 0 and figures["publish_s"] is not None
