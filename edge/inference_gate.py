"""Detection slots handed out earliest deadline first.

All cameras of a node share a few single-threaded detection slots (one per core). A plain
semaphore lets a thread that just arrived barge past threads that have waited for a whole
period, so on a busy box some cameras starve while others are served twice; their samples come
a period late. Here a released slot goes straight to the waiting sample whose deadline (its
frame's arrival plus the camera's period) is nearest, which is the order that keeps the most
cameras on time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class InferenceGate:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("an inference gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._lock = threading.Lock()
        self._waiting: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def acquire(self, deadline: float) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            heapq.heappush(self._waiting, (deadline, next(self._order), turn))
        turn.wait()  # the releasing thread hands its slot over before setting this

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                _deadline, _order, turn = heapq.heappop(self._waiting)
                turn.set()
            else:
                if self._free >= self.slots:
                    raise RuntimeError("InferenceGate released more often than acquired")
                self._free += 1

    @contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        self.acquire(deadline)
        try:
            yield
        finally:
            self.release()
