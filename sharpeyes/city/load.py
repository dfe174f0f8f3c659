"""The city's load: edges writing hazard episodes into their real outboxes at a steady pace, and
a watch on the outboxes that notes when central's receipt removed each event.

An event leaves its edge's outbox only on central's receipt, which central sends after its
commit: the time from writing an event to its receipt is therefore an upper bound on the time
from the event to its commit, measured without trusting central to report it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.outbox import Outbox
from sharpeyes.chaos.parts import Edge
from sharpeyes.city.plan import SITE, CityOptions, EdgeSpec, Episode, make_episode


@dataclass
class WrittenEvent:
    edge: str
    incident_key: str
    written_at: float  # monotonic
    offset_s: float  # since the load started
    receipted_at: float | None = None


@dataclass
class CityEdge:
    spec: EdgeSpec
    process: Edge
    outbox: Outbox

    def remaining_keys(self) -> set[str]:
        """Keys still in the outbox (read-only, beside the edge's own writer)."""
        db = sqlite3.connect(f"file:{self.process.outbox_path}?mode=ro", uri=True, timeout=30)
        try:
            return {key for (key,) in db.execute("SELECT key FROM outbox WHERE key IS NOT NULL")}
        finally:
            db.close()


def start_edges(specs: list[EdgeSpec], folder: Path, district_ports: dict[int, int],
                receipt_timeout_s: float) -> list[CityEdge]:
    edges = []
    for spec in specs:
        edge_dir = folder / spec.id
        edge_dir.mkdir(parents=True, exist_ok=True)
        process = Edge(edge_dir, district_ports[spec.district], receipt_timeout_s=receipt_timeout_s,
                       site=SITE, edge=spec.id)
        edges.append(CityEdge(spec, process.start(), process.outbox()))
    return edges


@dataclass
class Load:
    """Writes ``opts.events`` events as episodes spread evenly over ``opts.seconds``."""

    opts: CityOptions
    edges: list[CityEdge]
    jpeg: bytes
    events: dict[str, WrittenEvent] = field(default_factory=dict)  # event id -> when
    episodes: list[Episode] = field(default_factory=list)
    started: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def total_episodes(self) -> int:
        return self.opts.episodes_per_edge * len(self.edges)

    def start(self) -> None:
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._write, name="city-load", daemon=True),
                         threading.Thread(target=self._watch, name="city-receipts", daemon=True)]
        for thread in self._threads:
            thread.start()

    def writing(self) -> bool:
        return self._threads[0].is_alive()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def counts(self) -> tuple[int, int]:
        """(events written, events receipted)."""
        with self._lock:
            return len(self.events), sum(1 for e in self.events.values() if e.receipted_at is not None)

    def _write(self) -> None:
        per_edge = self.opts.episodes_per_edge
        written = 0
        while written < per_edge and not self._stop.is_set():
            due = min(per_edge, int((time.monotonic() - self.started) / self.opts.seconds * per_edge) + 1)
            for n in range(written, due):
                for edge in self.edges:
                    camera = edge.spec.cameras[n % len(edge.spec.cameras)]
                    episode = make_episode(edge.spec.id, camera, n, self.jpeg)
                    edge.outbox.put_many(episode.messages())
                    now = time.monotonic()
                    with self._lock:
                        self.episodes.append(episode)
                        for event in episode.events:
                            self.events[str(event.event_id)] = WrittenEvent(edge.spec.id, episode.incident_key, now,
                                                                            now - self.started)
            written = due
            self._stop.wait(0.05)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            self.note_receipts()

    def note_receipts(self) -> None:
        for edge in self.edges:
            try:
                remaining = edge.remaining_keys()
            except sqlite3.Error:
                continue
            now = time.monotonic()
            with self._lock:
                for event_id, event in self.events.items():
                    if event.edge == edge.spec.id and event.receipted_at is None and event_id not in remaining:
                        event.receipted_at = now

    def outboxes_empty(self) -> bool:
        return all(edge.outbox.depth()[0] == 0 for edge in self.edges)

    def close(self) -> None:
        self.stop()
        for edge in self.edges:
            edge.process.stop()
            edge.outbox.close()
