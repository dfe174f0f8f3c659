"""Several bench runs in a row: `--repeat N` (the same run N times) and `--find-capacity` (the largest
camera count every camera keeps up with in every run, then the full comparison at that count).

The arithmetic (spreads, worst-run targets, the search) is aggregate.py; this file only runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharpeyes.bench.edge_bench.aggregate import all_sustained, find_capacity, repeat_summary
from sharpeyes.bench.edge_bench.options import BenchOptions
from sharpeyes.bench.edge_bench.result import BenchResult
from sharpeyes.bench.edge_bench.run import run_bench

Progress = Callable[[str], None]


def _run_workdir(opts: BenchOptions, label: str) -> Path | None:
    # Each run keeps its own logs under --workdir (a run's files would overwrite the last's).
    return Path(opts.workdir) / label if opts.workdir else None


def run_repeated(opts: BenchOptions, repeat: int, progress: Progress, label: str = "",
                 stop_after: Callable[[BenchResult], bool] | None = None) -> list[BenchResult]:
    """The same run ``repeat`` times, one after another; fewer where ``stop_after`` says a run settles it."""
    results = []
    for k in range(repeat):
        if repeat > 1:
            progress(f"--- {label}run {k + 1} of {repeat} ---")
        run_opts = dataclasses.replace(opts, workdir=_run_workdir(opts, f"{label}run-{k + 1}")) if repeat > 1 else opts
        results.append(run_bench(run_opts, progress))
        if stop_after is not None and k + 1 < repeat and stop_after(results[-1]):
            progress(f"--- {label}the remaining {repeat - k - 1} run(s) cannot change the verdict: skipped ---")
            break
    return results


def repeated_summary(results: list[BenchResult]) -> dict[str, Any]:
    return repeat_summary([r.summary() for r in results])


def run_capacity(opts: BenchOptions, repeat: int, start: int, limit: int, step: int, progress: Progress) -> dict[str, Any]:
    """Search the camera count with the edge alone (no floor, peer or ungated edge: they do not
    decide whether the edge keeps up), then measure everything at the count found."""
    probes: dict[int, dict[str, Any]] = {}

    def holds(count: int) -> bool:
        progress(f"=== capacity probe: {count} cameras x {repeat} run(s) ===")
        probe = dataclasses.replace(opts, cameras=count, floor=False, peer=False, ungated=False,
                                    workdir=_run_workdir(opts, f"probe-{count}"))
        # A count holds only if every run holds: the first run that does not hold settles it.
        runs = run_repeated(probe, repeat, progress, label=f"probe-{count}-",
                            stop_after=lambda result: not all_sustained([result.summary()]))
        summaries = [r.summary() for r in runs]
        probes[count] = repeat_summary(summaries) if len(summaries) > 1 else summaries[0]
        ok = all_sustained(summaries)
        shares = [s["on_time_share_min"] for s in summaries]
        progress(f"=== {count} cameras: {'held' if ok else 'did NOT hold'} (worst camera on time: {shares}) ===")
        return ok

    search = find_capacity(holds, start=start, limit=limit, step=step)
    out: dict[str, Any] = {"capacity": search.capacity, "limit": limit, "limit_reached": search.limit_reached,
                           "repeat": repeat, "hazard": opts.hazard,
                           "tried": [{"cameras": c, "held": ok} for c, ok in search.tried]}
    if search.capacity:
        progress(f"=== capacity {search.capacity}: the full comparison (floor, peer) at that count ===")
        final = dataclasses.replace(opts, cameras=search.capacity, workdir=_run_workdir(opts, "at-capacity"))
        results = run_repeated(final, repeat, progress, label="at-capacity-")
        out["at_capacity"] = repeated_summary(results) if repeat > 1 else results[0].summary()
    out["probes"] = {str(k): v for k, v in sorted(probes.items())}
    return out
