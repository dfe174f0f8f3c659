"""`sharpeyes bench central` end to end on a small run: it measures every contestant through a
real Mosquitto and reports the figures the issue asks for (it measures, it does not judge speed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sharpeyes.bench.cli import app


@pytest.mark.timeout(180)
def test_bench_central_json_reports_every_figure_and_loses_nothing() -> None:
    result = CliRunner().invoke(app, ["central", "--events", "300", "--evidence-every", "5", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    for key in ("events_per_s", "floor_events_per_s", "naive_events_per_s", "naive_wal_events_per_s", "p50_ms",
                "p99_ms", "lost", "duplicated", "central_vs_naive", "central_vs_naive_wal"):
        assert figures[key] is not None, key
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["naive_lost"] == 0
    assert figures["mode"] == "backlog"  # at full speed each consumer drains a broker-held backlog
    assert figures["contestants"]["central"]["received"] == 300
    assert all(c["cpu_us_per_event"] > 0 for c in figures["contestants"].values())
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]


def test_bench_central_refuses_unknown_contestants() -> None:
    result = CliRunner().invoke(app, ["central", "--only", "floor,fast"])
    assert result.exit_code == 2 and "--only" in result.output


@pytest.mark.timeout(120)
def test_bench_central_live_mode_consumes_while_the_publisher_publishes() -> None:
    result = CliRunner().invoke(app, ["central", "--events", "200", "--rate", "400", "--only", "floor,central", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["mode"] == "live" and figures["rate"] == 400
    assert figures["lost"] == 0 and figures["duplicated"] == 0
    assert figures["contestants"]["central"]["received"] == 200
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]


def test_bench_central_refuses_an_unknown_mode() -> None:
    result = CliRunner().invoke(app, ["central", "--mode", "burst"])
    assert result.exit_code == 2 and "mode is one of backlog, live" in result.output


@pytest.mark.timeout(120)
def test_bench_central_workers_on_postgresql_reports_a_row_per_worker_count_and_stores_each_event_once() -> None:
    # Two `central ingest` processes on one shared subscription over a fresh PostgreSQL database
    # (dropped after); the bench exits 1 if any measurement did not store each event exactly once.
    result = CliRunner().invoke(app, ["central", "--workers", "1,2", "--database", "postgresql", "--events", "300"])
    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells for line in result.output.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert "floor (bare paho, counts only)" in rows
    for count in ("1", "2"):
        cells = rows[count]
        assert float(cells[1].replace(",", "")) > 0, cells  # events/s
        assert cells[9] == "300 / 300" and cells[10] == "0", cells  # stored / published, filed twice
