"""A change counter the ingest bumps after each commit and the live stream watches.

In-process only: with several central processes the web page still refreshes by its slow poll.
"""

from __future__ import annotations

import threading


class ChangeFeed:
    def __init__(self) -> None:
        self._version = 0
        self._lock = threading.Lock()

    def bump(self) -> int:
        with self._lock:
            self._version += 1
            return self._version

    @property
    def version(self) -> int:
        with self._lock:
            return self._version
