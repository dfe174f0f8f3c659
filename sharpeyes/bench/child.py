"""What every measured child process shares: stop on SIGTERM, say when it is ready, dump its records.

The parent measures CPU and memory from /proc; the child only reports what /proc cannot see
(when each sample was taken and how long its parts took), as one JSON file written at exit.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ChildRun:
    def __init__(self, out_path: Path) -> None:
        self.out_path = Path(out_path)
        self.ready_path = self.out_path.with_suffix(".ready")
        self.stopping = threading.Event()
        self.counter_log: list[dict[str, Any]] = []
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())

    def mark_ready(self) -> None:
        self.ready_path.write_text(str(time.monotonic()))

    def run_until_stopped(self, ready: Callable[[], bool], counters: Callable[[], dict[str, Any]],
                          partial: Callable[[], dict[str, Any]] | None = None, partial_every_s: float = 10.0) -> None:
        """Log ``counters`` once a second (the parent picks the entries at its window's ends), and
        every ``partial_every_s`` dump ``partial()``: a child that dies or is killed mid-run (a
        64-camera edge that does not stop within the parent's grace) still leaves its records."""
        announced = False
        last_dump = time.monotonic()
        while not self.stopping.wait(1.0):
            self.counter_log.append({"t": time.monotonic(), **counters()})
            if not announced and ready():
                self.mark_ready()
                announced = True
            if partial is not None and time.monotonic() - last_dump >= partial_every_s:
                self.dump({**partial(), "partial": True})
                last_dump = time.monotonic()
        self.counter_log.append({"t": time.monotonic(), **counters()})

    def dump(self, payload: dict[str, Any]) -> None:
        payload = {**payload, "counters": self.counter_log}
        tmp = self.out_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self.out_path)
