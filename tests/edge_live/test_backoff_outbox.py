"""The outbox keeps messages across restarts, in order, and the backoff stays within its cap."""

from __future__ import annotations

import random

from edge.backoff import Backoff
from edge.outbox import Outbox, OutboxMessage


def test_backoff_grows_to_its_cap_with_jitter_and_resets():
    backoff = Backoff(initial_s=0.5, cap_s=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 8.0 for d in delays)
    assert max(delays[5:]) > 4.0  # reached the cap region
    assert len(set(delays)) == len(delays)  # jitter: cameras do not retry in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_outbox_survives_reopen_in_order_and_removes_only_acknowledged(tmp_path):
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.put_many([OutboxMessage(f"t/{i}", f"m{i}".encode(), "event", None) for i in range(5)])
    first = box.peek(10)
    box.remove(first[0].id)
    box.close()

    reopened = Outbox(path)
    pending = reopened.peek(10)
    assert [m.payload for m in pending] == [b"m1", b"m2", b"m3", b"m4"]
    assert reopened.depth() == (4, 8)
    assert [m.payload for m in reopened.peek(10, after_id=pending[1].id)] == [b"m3", b"m4"]


def test_sequence_counter_is_monotonic_across_restarts(tmp_path):
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    seen = [box.next_counter("seq") for _ in range(3)]
    box.close()
    box = Outbox(path)
    seen.append(box.next_counter("seq"))
    assert seen == [0, 1, 2, 3]


def test_full_outbox_drops_clips_then_snapshots_never_events(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_bytes=10_000)
    box.put_many([OutboxMessage("e/0", b"e" * 1000, "event", None), OutboxMessage("s/0", b"s" * 3000, "snapshot", None),
                  OutboxMessage("c/0", b"c" * 4000, "clip", None)])
    assert box.depth() == (3, 8000)
    # 5 kB more: the clip goes first.
    box.put_many([OutboxMessage("e/1", b"e" * 1000, "event", None), OutboxMessage("s/1", b"s" * 4000, "snapshot", None)])
    assert [m.topic for m in box.peek(10)] == ["e/0", "s/0", "e/1", "s/1"]
    assert box.dropped == {"clip": 1, "snapshot": 0, "update": 0, "event": 0}
    # Events alone past the bound: the oldest snapshots go, every event stays.
    box.put_many([OutboxMessage(f"e/{i}", b"e" * 1000, "event", None) for i in range(2, 9)])
    topics = [m.topic for m in box.peek(20)]
    assert [t for t in topics if t.startswith("e/")] == [f"e/{i}" for i in range(9)]
    assert box.dropped["snapshot"] == 2 and not any(t.startswith("s/") for t in topics)
