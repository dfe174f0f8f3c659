"""Figures that hold: several runs' summaries folded into min / median / max, targets judged on the
worst run, and the search for the largest camera count that keeps every camera on time.

Pure functions on plain data (summaries are the dicts `BenchResult.summary()` returns); the runs
themselves are sharpeyes.bench.edge_bench.series.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Figures that describe the run rather than measure it: the same in every run, not aggregated.
SETTINGS = frozenset({"cameras", "seconds", "fps", "gop", "model", "peer_cameras", "changing_cameras", "hazard",
                      "camera_server", "alerts_expected", "blocked_cameras", "phases",
                      "evidence_stream"})


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """min, median and max of one figure over the runs that measured it; None when none did."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def aggregate_figures(summaries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float] | None]:
    """Every numeric figure of the summaries as {min, median, max}, over the runs where it is not null.

    A figure null in every run stays null (its reason is in each run's ``why``).
    """
    keys: list[str] = []
    for summary in summaries:
        keys += [k for k, v in summary.items() if k not in keys and k not in SETTINGS and (_numeric(v) or v is None)]
    out: dict[str, dict[str, float] | None] = {}
    for key in keys:
        values = [s[key] for s in summaries if _numeric(s.get(key))]
        if values or all(s.get(key) is None for s in summaries):
            out[key] = spread(values)
    return out


def worst_run_targets(per_run: Sequence[Mapping[str, bool | None]]) -> dict[str, bool | None]:
    """A target is met only if every run met it: False if any run missed it, None (not judged) if
    any run could not judge it and none missed it, True otherwise."""
    names: list[str] = []
    for targets in per_run:
        names += [name for name in targets if name not in names]
    out: dict[str, bool | None] = {}
    for name in names:
        verdicts = [targets.get(name) for targets in per_run]
        if any(v is False for v in verdicts):
            out[name] = False
        elif any(v is None for v in verdicts) or not verdicts:
            out[name] = None
        else:
            out[name] = True
    return out


def worst_run(summaries: Sequence[Mapping[str, Any]]) -> int:
    """Index of the run with the fewest cameras sustained (then the lowest on-time share): the one a
    reader should open first."""
    def badness(i: int) -> tuple[float, float]:
        s = summaries[i]
        return (s.get("cameras_sustained") or 0, s.get("on_time_share_min") or 0.0)

    return min(range(len(summaries)), key=badness)


def all_sustained(summaries: Sequence[Mapping[str, Any]]) -> bool:
    """Every camera at least 95 % on time, in every run."""
    return bool(summaries) and all(s.get("cameras_sustained") == s.get("cameras") for s in summaries)


def repeat_summary(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON object ``bench edge --repeat N`` prints (N > 1): settings, each figure's spread, the
    targets judged on the worst run, and every run's own summary."""
    first = summaries[0]
    return {
        "repeat": len(summaries),
        **{k: first.get(k) for k in sorted(SETTINGS) if k in first},
        "all_sustained_every_run": all_sustained(summaries),
        "worst_run": worst_run(summaries) + 1,
        "targets": worst_run_targets([s.get("targets", {}) for s in summaries]),
        "figures": aggregate_figures(summaries),
        "runs": list(summaries),
    }


@dataclass
class CapacitySearch:
    """The largest camera count found to hold (0: not even the smallest), and every count tried."""

    capacity: int
    tried: list[tuple[int, bool]] = field(default_factory=list)
    limit_reached: bool = False  # the limit itself held: the box may take more


def find_capacity(holds: Callable[[int], bool], start: int = 2, limit: int = 128, step: int = 1) -> CapacitySearch:
    """The largest count in 1..limit for which ``holds(count)``, assuming it holds up to some count
    and not beyond: doubling from ``start`` until a count fails (or ``limit``), then halving the
    interval between the last count that held and the first that failed until it is at most
    ``step`` wide (a probe is a whole bench run: ``step`` trades resolution for time)."""
    if start < 1 or limit < start or step < 1:
        raise ValueError("need 1 <= start <= limit and step >= 1")
    tried: list[tuple[int, bool]] = []

    def probe(count: int) -> bool:
        ok = holds(count)
        tried.append((count, ok))
        return ok

    good, bad = 0, None
    count = start
    while True:
        if probe(count):
            good = count
            if count == limit:
                return CapacitySearch(capacity=limit, tried=tried, limit_reached=True)
            count = min(limit, count * 2)
        else:
            bad = count
            break
    while bad - good > step:
        middle = (good + bad) // 2
        if probe(middle):
            good = middle
        else:
            bad = middle
    return CapacitySearch(capacity=good, tried=tried)
