"""A central benchmark's figures: per contestant, the summary ``--json`` prints, and the table
docs/benchmarks.md shows."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from sharpeyes.bench.central_bench.options import BenchOptions


@dataclass
class Figures:
    name: str
    events: int
    received: int = 0
    seconds: float | None = None
    events_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lost: int | None = None
    duplicated: int | None = None
    # CPU of the consumer (the bench process and any process it started, e.g. central's receiving
    # process) from the publisher's start to the last commit: less moved by other work than events/s.
    cpu_s: float | None = None
    cpu_us_per_event: float | None = None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


@dataclass
class BenchResult:
    options: BenchOptions
    figures: dict[str, Figures] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        c, f, n, w = (self.figures.get(k) for k in ("central", "floor", "naive", "naive_wal"))
        out: dict[str, Any] = {
            "events": self.options.events, "rate": self.options.rate or None, "mode": self.options.mode,
            "batch_window_ms": self.options.batch_window_ms,
            "broker_data": self.options.broker_data,
            "evidence_every": self.options.evidence_every,
            "events_per_s": c.events_per_s if c else None, "p50_ms": c.p50_ms if c else None,
            "p99_ms": c.p99_ms if c else None, "lost": c.lost if c else None,
            "duplicated": c.duplicated if c else None,
            "floor_events_per_s": f.events_per_s if f else None,
            "naive_events_per_s": n.events_per_s if n else None,
            "naive_p99_ms": n.p99_ms if n else None, "naive_lost": n.lost if n else None,
            "naive_wal_events_per_s": w.events_per_s if w else None,
        }
        if c and n and c.events_per_s and n.events_per_s:
            out["central_vs_naive"] = round(c.events_per_s / n.events_per_s, 2)
        if c and w and c.events_per_s and w.events_per_s:
            out["central_vs_naive_wal"] = round(c.events_per_s / w.events_per_s, 2)
        if c and f and c.events_per_s and f.events_per_s:
            out["central_share_of_floor"] = round(c.events_per_s / f.events_per_s, 3)
        out["contestants"] = {k: asdict(v) for k, v in self.figures.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False)


def markdown(summary: dict[str, Any]) -> str:
    """The result as the table docs/benchmarks.md shows."""
    c = summary["contestants"]
    names = [n for n in ("central", "naive", "naive_wal", "floor") if n in c]
    titles = {"central": "central", "naive": "naive subscriber", "naive_wal": "naive subscriber, WAL",
              "floor": "bare subscriber (floor)"}
    lines = ["| figure | " + " | ".join(titles[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]

    def cell(name: str, key: str, unit: str = "") -> str:
        v = c.get(name, {}).get(key)
        return "—" if v is None else f"{v:,}{unit}" if isinstance(v, int) else f"{v:,.1f}{unit}"

    for label, key, unit in (("events/s sustained", "events_per_s", ""), ("publish→commit p50", "p50_ms", " ms"),
                             ("publish→commit p99", "p99_ms", " ms"),
                             ("consumer CPU per event", "cpu_us_per_event", " µs"), ("lost", "lost", ""),
                             ("filed twice", "duplicated", "")):
        lines.append(f"| {label} | " + " | ".join(cell(n, key, unit) for n in names) + " |")
    ratios = [f"central ÷ {label}: {summary[key]:.2f}×" for key, label in
              (("central_vs_naive", "naive"), ("central_vs_naive_wal", "naive with WAL"),
               ("central_share_of_floor", "floor")) if summary.get(key) is not None]
    if ratios:
        lines += ["", "; ".join(ratios)]
    return "\n".join(lines)


@dataclass
class WorkerRun:
    """One measurement of N ``central ingest`` workers (workers.py)."""

    workers: int
    events: int
    round: int = 0
    received: int = 0  # rows the bench's polls saw
    seconds: float | None = None
    events_per_s: float | None = None
    floor_events_per_s: float | None = None  # the floor of the same round
    p50_ms: float | None = None
    p99_ms: float | None = None
    # CPU from the go to the last commit: the worker processes and their children; PostgreSQL's
    # processes serving the database (None: SQLite, or a server on another machine); the broker.
    cpu_s: float | None = None
    cpu_s_per_1k: float | None = None
    cpu_s_by_worker: list[float] = field(default_factory=list)  # how the work spread over the workers
    postgresql_cpu_s_per_1k: float | None = None
    broker_cpu_s_per_1k: float | None = None
    stored: int = 0  # event rows
    distinct: int = 0  # distinct event ids among them
    folded: int = 0  # the sum of the incidents' event_count
    lost: int | None = None
    duplicated: int | None = None

    @property
    def failure(self) -> str | None:
        """Why the run did not store each published event exactly once; None when it did."""
        if self.stored == self.distinct == self.folded == self.events:
            return None
        return (f"{self.workers} worker(s), round {self.round + 1}: published {self.events}, stored {self.stored} "
                f"rows of {self.distinct} distinct events, incidents count {self.folded}")


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


@dataclass
class ScalingResult:
    """``--workers``: per round the floor, then each worker count."""

    options: BenchOptions
    floors: list[Figures] = field(default_factory=list)
    runs: list[WorkerRun] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [f for f in (r.failure for r in self.runs) if f is not None]

    def summary(self) -> dict[str, Any]:
        o = self.options
        floor_eps = [f.events_per_s for f in self.floors]
        worst_one = min((r.events_per_s or 0.0 for r in self.runs if r.workers == 1), default=None)
        rows = []
        for n in o.workers:
            runs = [r for r in self.runs if r.workers == n]
            eps = [r.events_per_s or 0.0 for r in runs]
            worst = min(eps) if eps else None
            rows.append({
                "workers": n, "events_per_s": _median(list(eps)), "events_per_s_min": worst,
                "events_per_s_max": max(eps) if eps else None,
                # judged on the worst run: against the floor of its own round, and against 1 worker's worst run
                "vs_floor": min((_ratio(r.events_per_s, r.floor_events_per_s) or 0.0 for r in runs), default=None),
                "vs_one_worker": _ratio(worst, worst_one),
                "cpu_s_per_1k": _median([r.cpu_s_per_1k for r in runs]),
                "postgresql_cpu_s_per_1k": _median([r.postgresql_cpu_s_per_1k for r in runs]),
                "broker_cpu_s_per_1k": _median([r.broker_cpu_s_per_1k for r in runs]),
                "p50_ms": _median([r.p50_ms for r in runs]), "p99_ms": _median([r.p99_ms for r in runs]),
                "stored_min": min((r.distinct for r in runs), default=0),
                "lost": max((r.lost or 0 for r in runs), default=0),
                "duplicated": max((r.duplicated or 0 for r in runs), default=0),
                "runs": [asdict(r) for r in runs],
            })
        return {
            "events": o.events, "rate": o.rate or None, "mode": o.mode, "database": o.database,
            "evidence_every": o.evidence_every, "batch_window_ms": o.batch_window_ms, "repeat": o.repeat,
            "broker_data": o.broker_data,
            "floor_events_per_s": _median(list(floor_eps)),
            "floor_events_per_s_min": min((v for v in floor_eps if v is not None), default=None),
            "floor_events_per_s_max": max((v for v in floor_eps if v is not None), default=None),
            "floor_cpu_s_per_1k": _median([None if f.cpu_us_per_event is None else f.cpu_us_per_event / 1000
                                           for f in self.floors]),
            "floors": [asdict(f) for f in self.floors],
            "workers": rows,
            "lost": sum(r.lost or 0 for r in self.runs), "duplicated": sum(r.duplicated or 0 for r in self.runs),
            "failures": self.failures(),
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False)


def markdown_scaling(summary: dict[str, Any]) -> str:
    """The ``--workers`` table: one row for the floor, one per worker count."""
    repeat = summary["repeat"]
    worst = " (worst run)" if repeat > 1 else ""

    def num(v: float | None, digits: int = 0) -> str:
        return "—" if v is None else f"{v:,.{digits}f}"

    def spread(mid: float | None, lo: float | None, hi: float | None) -> str:
        return num(mid) if repeat == 1 else f"{num(mid)} ({num(lo)}–{num(hi)})"

    lines = [f"| workers | events/s{' median (min–max)' if repeat > 1 else ''} | × floor{worst} | × 1 worker{worst} | "
             "workers' CPU-s per 1k events | PostgreSQL CPU-s per 1k | broker CPU-s per 1k | publish→commit p50 ms | "
             "p99 ms | stored / published | filed twice |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    floors = summary["floors"]
    floor_eps = spread(summary["floor_events_per_s"], summary["floor_events_per_s_min"], summary["floor_events_per_s_max"])
    lines.append(f"| floor (bare paho, counts only) | {floor_eps} | 1.00 | | {num(summary['floor_cpu_s_per_1k'], 3)} | | | "
                 f"{num(_median([f['p50_ms'] for f in floors]), 1)} | {num(_median([f['p99_ms'] for f in floors]), 1)} | "
                 f"{min((f['received'] for f in floors), default=0):,} / {summary['events']:,} | |")
    for row in summary["workers"]:
        lines.append(
            f"| {row['workers']} | {spread(row['events_per_s'], row['events_per_s_min'], row['events_per_s_max'])} | "
            f"{num(row['vs_floor'], 2)} | {num(row['vs_one_worker'], 2)} | {num(row['cpu_s_per_1k'], 3)} | "
            f"{num(row['postgresql_cpu_s_per_1k'], 3)} | {num(row['broker_cpu_s_per_1k'], 3)} | "
            f"{num(row['p50_ms'], 1)} | {num(row['p99_ms'], 1)} | {row['stored_min']:,} / {summary['events']:,} | "
            f"{row['duplicated']:,} |")
    evidence = (f"one in {summary['evidence_every']} with a 60 KB JPEG" if summary["evidence_every"]
                else "no evidence blobs")
    backlog = summary["mode"] == "backlog"
    rate = f" at {summary['rate']:g}/s" if summary.get("rate") else ""
    lines += ["", f"{summary['mode']} mode, {summary['events']:,} events{rate} ({evidence}), central on "
              f"{summary['database']}, evidence on the filesystem, {repeat} round(s); each worker is a "
              "`central ingest` process (and its receiving process) on one shared subscription; the floor is "
              f"a bare paho subscriber {'draining' if backlog else 'consuming'} the same mix in the same round. "
              "Latency: the bench's 50 ms poll of the events table minus the publish stamp"
              + (" (in backlog mode, time in the broker's queue)." if backlog else ".")]
    return "\n".join(lines)
