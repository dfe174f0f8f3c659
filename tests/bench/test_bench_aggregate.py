"""`bench edge --repeat N` and `--find-capacity` as arithmetic on plain data: spreads of every
figure, targets judged on the worst run, and the capacity search over a fake measurement."""

from __future__ import annotations

from typing import Any

import pytest

from sharpeyes.bench.edge_bench.aggregate import (
    aggregate_figures,
    all_sustained,
    find_capacity,
    repeat_summary,
    worst_run_targets,
)
from sharpeyes.bench.edge_bench.result import lift_targets


def _run(sustained: int, latency: float | None, on_time: float, targets: dict[str, bool | None]) -> dict[str, Any]:
    return {"cameras": 8, "cameras_sustained": sustained, "alert_latency_ms_p95": latency, "on_time_share_min": on_time,
            "hazard": "fire_lane", "peer_cpu_per_camera_s": None, "peer_note": "x", "targets": targets}


RUNS = [
    _run(8, 1200.0, 0.98, {"all_cameras_sustained": True, "alert_latency_p95_at_most_3_s": True, "vs_peer": None}),
    _run(6, 4100.0, 0.81, {"all_cameras_sustained": False, "alert_latency_p95_at_most_3_s": False, "vs_peer": None}),
    _run(8, 1500.0, 0.97, {"all_cameras_sustained": True, "alert_latency_p95_at_most_3_s": True, "vs_peer": None}),
]


def test_every_figure_gets_min_median_max_and_settings_are_not_aggregated() -> None:
    figures = aggregate_figures(RUNS)
    assert figures["cameras_sustained"] == {"min": 6, "median": 8, "max": 8}
    assert figures["alert_latency_ms_p95"] == {"min": 1200.0, "median": 1500.0, "max": 4100.0}
    assert figures["on_time_share_min"] == {"min": 0.81, "median": 0.97, "max": 0.98}
    assert figures["peer_cpu_per_camera_s"] is None  # null in every run stays null
    assert "cameras" not in figures and "peer_note" not in figures and "targets" not in figures


def test_a_figure_null_in_some_runs_spreads_over_the_runs_that_measured_it() -> None:
    runs = [_run(8, None, 0.97, {}), _run(8, 900.0, 0.99, {})]
    assert aggregate_figures(runs)["alert_latency_ms_p95"] == {"min": 900.0, "median": 900.0, "max": 900.0}


def test_a_target_counts_as_met_only_if_the_worst_run_meets_it() -> None:
    verdicts = worst_run_targets([r["targets"] for r in RUNS])
    assert verdicts == {"all_cameras_sustained": False, "alert_latency_p95_at_most_3_s": False, "vs_peer": None}
    assert worst_run_targets([{"t": True}, {"t": True}]) == {"t": True}
    # A run that could not judge a target (no alert arrived) leaves it unjudged, never met.
    assert worst_run_targets([{"t": True}, {"t": None}]) == {"t": None}


def test_repeat_summary_names_the_worst_run_and_keeps_every_run() -> None:
    summary = repeat_summary(RUNS)
    assert summary["repeat"] == 3 and summary["cameras"] == 8
    assert summary["worst_run"] == 2
    assert summary["all_sustained_every_run"] is False
    assert summary["runs"] == RUNS
    assert all_sustained([RUNS[0], RUNS[2]]) is True


def test_lift_targets_ask_for_24_cameras_and_alerts_within_2_s() -> None:
    met = lift_targets({"cameras": 24, "cameras_sustained": 24, "alert_latency_ms_p95": 1900, "rss_mb": 900})
    assert met == {"all_cameras_sustained": True, "at_least_24_cameras_sustained": True, "rss_at_most_1_5_gb": True,
                   "alert_latency_p95_at_most_2_s": True}
    short = lift_targets({"cameras": 16, "cameras_sustained": 16, "alert_latency_ms_p95": 2500, "rss_mb": 900})
    assert short["all_cameras_sustained"] is True
    assert short["at_least_24_cameras_sustained"] is False and short["alert_latency_p95_at_most_2_s"] is False


@pytest.mark.parametrize("true_capacity", [0, 1, 5, 23, 24, 37, 64, 100])
def test_capacity_search_finds_the_largest_count_that_holds(true_capacity: int) -> None:
    search = find_capacity(lambda n: n <= true_capacity, start=4, limit=100)
    assert search.capacity == true_capacity
    assert search.limit_reached == (true_capacity == 100)
    # Doubling then halving: far fewer whole bench runs than counting up one by one.
    assert len(search.tried) <= 2 * 7 + 1
    assert len({n for n, _ in search.tried}) == len(search.tried)  # no count measured twice


def test_capacity_search_stops_at_the_step_asked_for() -> None:
    tried: list[int] = []

    def holds(n: int) -> bool:
        tried.append(n)
        return n <= 45

    search = find_capacity(holds, start=8, limit=128, step=4)
    assert 42 <= search.capacity <= 45  # within one step of the truth, never above it
    assert tried[:4] == [8, 16, 32, 64]


def test_capacity_search_with_a_flaky_count_keeps_the_last_count_that_held() -> None:
    # A real box is not monotonic at the edge of its capacity: the answer is a count that held.
    outcomes = {4: True, 8: True, 16: False, 12: True, 14: False, 13: True}
    search = find_capacity(lambda n: outcomes[n], start=4, limit=64)
    assert search.capacity == 13
    assert (13, True) in search.tried


def test_capacity_search_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        find_capacity(lambda n: True, start=0)
    with pytest.raises(ValueError):
        find_capacity(lambda n: True, start=10, limit=5)


class _Run:
    """What series.py reads of a bench run: its summary (the run itself needs cameras and a broker)."""

    def __init__(self, sustained: int, cameras: int = 8) -> None:
        self._summary = {"cameras": cameras, "cameras_sustained": sustained, "on_time_share_min": sustained / cameras}

    def summary(self) -> dict[str, float]:
        return self._summary


def test_a_capacity_probe_stops_at_its_first_run_that_does_not_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    from sharpeyes.bench.edge_bench import series
    from sharpeyes.bench.edge_bench.options import BenchOptions

    outcomes = {8: [8, 7, 8], 4: [4, 4, 4], 6: [6, 6, 5], 5: [5] * 6}  # cameras sustained, run by run
    runs: list[int] = []

    def run_bench(opts: BenchOptions, progress: object) -> _Run:
        runs.append(opts.cameras)
        return _Run(outcomes[opts.cameras][runs.count(opts.cameras) - 1], opts.cameras)

    monkeypatch.setattr(series, "run_bench", run_bench)
    out = series.run_capacity(BenchOptions(), repeat=3, start=4, limit=8, step=1, progress=lambda text: None)
    assert out["capacity"] == 5
    # 4 holds in all 3 runs; 8 fails in its 2nd run, which ends its probe; 6 fails in its 3rd;
    # 5 holds in all 3; then the full comparison at 5 runs 3 times.
    assert runs == [4, 4, 4, 8, 8, 6, 6, 6, 5, 5, 5, 5, 5, 5]
    assert out["tried"] == [{"cameras": 4, "held": True}, {"cameras": 8, "held": False},
                            {"cameras": 6, "held": False}, {"cameras": 5, "held": True}]
