"""The outbox's bookkeeping for receipts and dead letters, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edge.outbox import Outbox, OutboxMessage

EVENT = "sharpeyes/v1/s/e/event"


def _fill(outbox: Outbox, n: int) -> list[int]:
    outbox.put_many([OutboxMessage(EVENT, f"e{i}".encode(), "event", f"key-{i}") for i in range(n)])
    return [m.id for m in outbox.peek(100)]


def test_sent_messages_wait_for_the_receipt_and_leave_only_with_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    ids = _fill(outbox, 3)
    outbox.mark_sent(ids[0])
    outbox.mark_sent(ids[1])
    assert [m.id for m in outbox.peek(10)] == [ids[2]]  # sent ones are not sent again at once
    assert outbox.depth()[0] == 3 and outbox.awaiting_receipt() == 2
    assert outbox.settle(["key-0", "key-9"]) == 1  # a key it no longer has is harmless
    assert outbox.depth()[0] == 2 and outbox.awaiting_receipt() == 1
    assert outbox.lowest_id() == ids[2]


def test_an_overdue_receipt_makes_the_message_due_again_with_a_doubling_wait(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    ids = _fill(outbox, 2)
    outbox.mark_sent(ids[0])
    outbox.mark_sent(ids[1])
    now = time.time()
    assert outbox.due_again(30.0, now=now + 10) is None
    assert outbox.due_again(30.0, now=now + 31) == ids[0]
    assert [m.id for m in outbox.peek(10)] == ids  # both go out again, in order
    outbox.mark_sent(ids[0])  # the second send: the next wait is twice as long
    later = time.time()
    assert outbox.due_again(30.0, now=later + 45) is None
    assert outbox.due_again(30.0, now=later + 61) == ids[0]


def test_when_receipts_lapse_what_the_broker_acknowledged_is_deemed_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    ids = _fill(outbox, 3)
    outbox.mark_sent(ids[0])
    assert outbox.forget_sent() == 1
    assert [m.id for m in outbox.peek(10)] == ids[1:]


def test_dead_letters_keep_everything_and_go_back_in_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    ids = _fill(outbox, 3)
    assert outbox.bury(ids[1], "not authorized (0x87): check the ACL for e", 10)
    assert outbox.dead_letter_count() == 1 and outbox.depth()[0] == 2
    letter = outbox.dead_letters()[0]
    assert (letter.id, letter.attempts, letter.size) == (ids[1], 10, 2) and "ACL" in letter.reason
    assert outbox.requeue() == 1
    back = outbox.peek(10)
    assert [m.id for m in back] == ids and back[1].key == "key-1" and back[1].payload == b"e1"


def test_an_outbox_from_before_receipts_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
                             qos INTEGER NOT NULL, retain INTEGER NOT NULL DEFAULT 0, kind TEXT NOT NULL,
                             created_at REAL NOT NULL);
        INSERT INTO outbox (topic, payload, qos, retain, kind, created_at) VALUES ('t', x'01', 1, 0, 'event', 0);
    """)
    db.commit()
    db.close()
    outbox = Outbox(path)
    [old] = outbox.peek(10)
    assert old.key is None and old.payload == b"\x01"  # no key: it leaves on the broker's PUBACK, as before
    outbox.put_many([OutboxMessage(EVENT, b"new", "event", "key-new")])
    assert [m.key for m in outbox.peek(10)] == [None, "key-new"]
