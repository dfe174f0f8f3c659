"""The outbox's stated policy on a real SQLite file: what goes first when it is over its bounds or
the disk is full, that every drop is counted across restarts, and that the newest starts stay."""

from __future__ import annotations

import time
from pathlib import Path

from edge.outbox import Outbox, OutboxMessage


def _kinds(box: Outbox) -> list[str]:
    return [m.topic for m in box.peek(1000)]


def test_over_the_bound_clips_then_snapshots_then_updates_go_never_starts_or_ends(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=10_000)
    box.put_many([OutboxMessage("start/0", b"e" * 1000, "event", None), OutboxMessage("update/0", b"u" * 1000, "update", None),
                  OutboxMessage("snap/0", b"s" * 2000, "snapshot", None), OutboxMessage("clip/0", b"c" * 3000, "clip", None)])
    box.put_many([OutboxMessage("end/0", b"e" * 1000, "event", None), OutboxMessage("start/1", b"e" * 4000, "event", None)])
    assert _kinds(box) == ["start/0", "update/0", "snap/0", "end/0", "start/1"]  # the clip went: back under
    box.put_many([OutboxMessage(f"start/{i}", b"e" * 1000, "event", None) for i in range(2, 6)])
    assert _kinds(box) == ["start/0", "end/0", "start/1"] + [f"start/{i}" for i in range(2, 6)]
    assert box.dropped == {"clip": 1, "snapshot": 1, "update": 1, "event": 0}
    box.close()
    assert Outbox(tmp_path / "o.db").dropped["update"] == 1  # totals survive a restart


def test_old_evidence_and_updates_age_out_events_do_not(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_age_s=60)
    box.put_many([OutboxMessage("start/old", b"e", "event", None), OutboxMessage("snap/old", b"s", "snapshot", None),
                  OutboxMessage("update/old", b"u", "update", None)])
    box._db.execute("UPDATE outbox SET created_at = ?", (time.time() - 3600,))  # an hour-old backlog
    box.put_many([OutboxMessage("start/new", b"e", "event", None)])
    assert _kinds(box) == ["start/old", "start/new"]
    assert box.dropped["snapshot"] == 1 and box.dropped["update"] == 1


def test_a_full_disk_keeps_detecting_and_keeps_the_newest_starts(tmp_path: Path) -> None:
    # The disk is made full with a size cap on the file (SQLite's max_page_count answers
    # "database or disk is full" exactly as a full filesystem does): a fault caused, not mocked.
    box = Outbox(tmp_path / "o.db", max_file_bytes=4 * 1024 * 1024)
    clip = b"c" * 200_000
    written = 0
    while not box.disk_full and written < 100:
        box.put_many([OutboxMessage(f"clip/{written}", clip, "clip", None), OutboxMessage(f"start/{written}", b"e" * 500, "event", None)])
        written += 1
    assert box.disk_full and box.dropped["clip"] > 0
    for i in range(60):  # a long run of alarms on a full disk: every write returns, the newest starts stay
        box.put_many([OutboxMessage(f"late-clip/{i}", clip, "clip", None), OutboxMessage(f"late-start/{i}", b"e" * 500, "event", None)])
    topics = _kinds(box)
    assert "late-start/59" in topics and "late-start/58" in topics
    assert box.dropped["clip"] > 0 and box.depth()[0] > 0
    box._db.execute("DELETE FROM outbox")  # the operator frees space: the next write says so
    box.put_many([OutboxMessage("start/after", b"e", "event", None)])
    assert not box.disk_full
