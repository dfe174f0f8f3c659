"""A sliding-window rate limit per key, in memory (per central process): Open311 intake per API key
and per client address. Several processes each allow the rate, which bounds a flood all the same."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.limit, self.window_s, self._clock, self._max_keys = limit, window_s, clock, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, *keys: str) -> float | None:
        """None when every key is under the limit (and the hit is counted), else seconds to wait."""
        now = self._clock()
        with self._lock:
            queues = []
            for key in keys:
                hits = self._hits.get(key)
                if hits is None:
                    if len(self._hits) >= self._max_keys:
                        self._forget_idle(now)
                    hits = self._hits[key] = deque()
                while hits and hits[0] <= now - self.window_s:
                    hits.popleft()
                if len(hits) >= self.limit:
                    return max(0.0, hits[0] + self.window_s - now)
                queues.append(hits)
            for hits in queues:
                hits.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]:
            del self._hits[key]
