"""A durable outbox on disk: every message is written here before it is published and removed
only after the broker acknowledged it (PUBACK), so broker outages, restarts and ``kill -9`` lose
nothing. Messages leave in the order they were written."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str


# When the outbox is over its byte bound, these kinds are dropped, oldest first, in this order.
# Events are never dropped: an incident without its clip is still an incident.
DROP_ORDER = ("clip", "snapshot")


class Outbox:
    """Thread-safe; one SQLite connection guarded by a lock (writes are small and rare)."""

    def __init__(self, path: Path | str, *, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.dropped: dict[str, int] = {kind: 0 for kind in DROP_ORDER}
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged write must survive power loss, not only a process crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)

    def put_many(self, messages: list[tuple[str, bytes, int, bool, str]]) -> None:
        """Write several messages atomically: (topic, payload, qos, retain, kind)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO outbox (topic, payload, qos, retain, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(t, p, q, int(r), k, now) for t, p, q, r, k in messages],
                )
                self._enforce_bound()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._wakeup.notify_all()

    def _enforce_bound(self) -> None:
        if self.max_bytes is None:
            return
        (total,) = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        for kind in DROP_ORDER:
            if total <= self.max_bytes:
                return
            rows = self._db.execute(
                "SELECT id, LENGTH(payload) FROM outbox WHERE kind = ? ORDER BY id", (kind,)
            ).fetchall()
            for row_id, size in rows:
                if total <= self.max_bytes:
                    break
                self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                total -= size
                self.dropped[kind] += 1

    def peek(self, limit: int, after_id: int = 0) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, kind FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def wait_for_messages(self, after_id: int, timeout: float) -> None:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM outbox WHERE id > ? LIMIT 1", (after_id,)).fetchone()
            if row is None:
                self._wakeup.wait(timeout)

    def remove(self, message_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def depth(self) -> tuple[int, int]:
        """(messages pending, bytes pending)."""
        with self._lock:
            count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        return int(count), int(size)

    def next_counter(self, name: str) -> int:
        """A persistent monotonic counter (the per-edge event ``seq`` survives restarts)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 0) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                (name,),
            )
            (value,) = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            self._db.execute("COMMIT")
        return int(value)

    def close(self) -> None:
        with self._lock:
            self._db.close()
