"""What a central benchmark run is asked to do."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("backlog", "live")


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

    def __post_init__(self) -> None:
        if not self.mode:
            self.mode = "live" if self.rate > 0 else "backlog"
        if self.mode not in MODES:
            raise BenchError(f"mode is one of {', '.join(MODES)}, not {self.mode!r}")
