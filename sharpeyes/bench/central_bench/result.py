"""A central benchmark's figures: per contestant, the summary ``--json`` prints, and the table
docs/benchmarks.md shows."""

from __future__ import annotations

import json
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
