"""Garbage-collector settings for the ingest's processes (the writer's and the receiving one)."""

from __future__ import annotations

import gc

# The collector's first generation, in container objects. The default (700) ran a collection every
# few messages during a burst (ORM states, rows, tuples); measured draining 30,000 events: +10 %
# events/s and -9 % CPU per event with this and gc.freeze() (docs/benchmarks.md).
GC_GEN0_THRESHOLD = 20_000


def tune_collector() -> None:
    """Tune the process's garbage collector for the ingest: objects alive now (modules, config,
    the ORM's mappings) move out of the collector's way, and young collections run less often."""
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gen0), gen1, gen2)
