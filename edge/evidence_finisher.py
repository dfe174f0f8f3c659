"""One thread per node that finishes the evidence following alarms: cuts each clip from its
camera's packet ring, decodes the main stream's full-resolution picture, and queues the ``update``.

The camera's own worker did this before, when the clip's seconds after the alarm had arrived. On a
box where many lanes alarm at once (64 fire-lane cameras, a quarter blocked), a dozen workers then
cut their clips in the same second: 1.7 cores of work in one second on a 2-core box, and every
camera, alarming or not, took its next sample late (docs/benchmarks.md). Here the work queues for
one thread: it takes at most one core, samples keep their cadence, and a clip follows its alarm a
moment later, which nothing waits for (the alarm itself has left already).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class EvidenceFinisher:
    def __init__(self, name: str = "evidence-finisher") -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the finisher thread, after the jobs before it (inline before ``start``)."""
        if not self._started:
            job()
            return
        self._jobs.put(job)

    def pending(self) -> int:
        return self._jobs.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (each clip holds its ring's seconds until cut), then end."""
        if not self._started:
            return
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # one camera's failed evidence must not stop the others'
                log.exception("finishing an alarm's evidence failed")
