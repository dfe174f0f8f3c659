"""What a central benchmark run is asked to do."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("backlog", "live")
DATABASES = ("sqlite", "postgresql")


class BenchError(RuntimeError):
    pass


@dataclass
class BenchOptions:
    events: int = 20000
    rate: float = 0.0  # events/s; 0: as fast as the publisher can
    evidence_every: int = 5  # one event in N carries a 60 KB JPEG snapshot; 0: none
    timeout_s: float = 300.0
    contestants: tuple[str, ...] = ("floor", "naive", "naive_wal", "central")
    mode: str = ""  # backlog or live; "" picks backlog at full speed and live with a rate
    broker_data: str = "memory"  # where the bench broker's persistence lives: memory or disk
    batch_window_ms: float | None = None  # central's group-commit window; None: central's default
    # Worker counts to measure with `central ingest` processes on one shared subscription (the floor
    # beside them); empty: the contestants above, central in the bench's own process.
    workers: tuple[int, ...] = ()
    database: str = "sqlite"  # central's database: sqlite (a file) or postgresql (a fresh database each time)
    database_url: str | None = None  # the PostgreSQL server; None: $SHARPEYES_BENCH_PG_URL, ... (pgdb.py)
    repeat: int = 1  # rounds of (floor, each worker count)

    def __post_init__(self) -> None:
        if not self.mode:
            self.mode = "live" if self.rate > 0 else "backlog"
        if self.mode not in MODES:
            raise BenchError(f"mode is one of {', '.join(MODES)}, not {self.mode!r}")
        if self.database_url and self.database == "sqlite":
            self.database = "postgresql"
        if self.database not in DATABASES:
            raise BenchError(f"--database is one of {', '.join(DATABASES)}, not {self.database!r}")
        if any(n < 1 for n in self.workers):
            raise BenchError("--workers takes counts of 1 or more")
        if self.repeat < 1:
            raise BenchError("--repeat takes 1 or more")
        if self.repeat > 1 and not self.workers:
            raise BenchError("--repeat goes with --workers")
