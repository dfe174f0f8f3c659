"""The slot rules (central/ingest/slots.py) on plain rows and a fixed clock: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.ingest.slots import FREE_GRACE_S, TTL_S, LeaseRow, Plan, SlotNames, plan, read_pool

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
NAMES = SlotNames("central-demo", 3)


def slot(k: int, holder: str, expires_in_s: float = TTL_S, names: SlotNames = NAMES) -> LeaseRow:
    return LeaseRow(names.lease(k), holder, NOW + timedelta(seconds=expires_in_s))


def worker(holder: str, expires_in_s: float = TTL_S) -> LeaseRow:
    return LeaseRow(NAMES.worker(holder[-4:]), holder, NOW + timedelta(seconds=expires_in_s))


def decide(me: str, rows: list[LeaseRow], running: list[int] = (), free_since: dict[int, datetime] | None = None,
           settled: bool = True) -> Plan:  # type: ignore[assignment]
    return plan(NAMES, me, rows, NOW, running, free_since or {}, settled=settled)


def test_names_of_a_pool_and_their_limits() -> None:
    assert NAMES.client_id(2) == "central-demo-slot-2"
    assert NAMES.lease(2) == "ingest-slot-2@central-demo"
    assert NAMES.parse("ingest-slot-2@central-demo") == ("slot", "2")
    assert NAMES.parse("ingest-worker-ab12cd34@central-demo") == ("worker", "ab12cd34")
    assert NAMES.parse("ingest-slot-2@central-other") is None  # another pool on the same database
    assert NAMES.parse("deadlines") is None
    assert NAMES.problem() is None
    assert "too long" in (SlotNames("x" * 60, 3).problem() or "")
    assert "'/'" in (SlotNames("a/b", 3).problem() or "")
    assert SlotNames("a", 0).problem() is not None


def test_workers_starting_together_take_one_slot_each() -> None:
    rows = [worker("w-a"), worker("w-b"), worker("w-c")]
    taken = {me: decide(me, rows).take for me in ("w-a", "w-b", "w-c")}
    assert taken == {"w-a": (0,), "w-b": (1,), "w-c": (2,)}


def test_nothing_is_taken_in_the_first_tick() -> None:
    assert decide("w-a", [worker("w-a")], settled=False) == Plan()


def test_a_lone_worker_takes_every_slot() -> None:
    # No session may stay without a reader: the broker queues a share for each one that exists.
    assert decide("w-a", [worker("w-a")]).take == (0, 1, 2)


def test_a_holder_renews_what_it_runs() -> None:
    rows = [worker("w-a"), worker("w-b"), slot(0, "w-a"), slot(1, "w-b")]
    decided = decide("w-a", rows, running=[0])
    assert decided.keep == (0,) and decided.stop == () and decided.release == ()


def test_a_dead_workers_slot_goes_to_the_least_loaded_survivor() -> None:
    # w-c died: its worker row ran out first, then its slot's lease.
    rows = [worker("w-a"), worker("w-b"), worker("w-c", -1.0), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-c", -0.5)]
    assert decide("w-a", rows, running=[0]).take == (2,)  # ties: the first name
    assert decide("w-b", rows, running=[1]).take == ()


def test_a_dead_workers_slot_is_left_to_a_spare() -> None:
    rows = [worker("w-a"), worker("w-b"), worker("w-s"), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-c", -0.5)]
    assert decide("w-s", rows).take == (2,)
    assert decide("w-a", rows, running=[0]).take == ()


def test_anyone_takes_a_slot_that_stays_free_past_the_grace() -> None:
    # Dealt to w-a, which does not take it (stalled): after FREE_GRACE_S w-b does.
    rows = [worker("w-a"), worker("w-b"), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-c", -30.0)]
    assert decide("w-b", rows, running=[1], free_since={2: NOW - timedelta(seconds=1)}).take == ()
    assert decide("w-b", rows, running=[1], free_since={2: NOW - timedelta(seconds=FREE_GRACE_S)}).take == (2,)


def test_a_slot_taken_over_is_stopped_at_once() -> None:
    # w-a stalled past its TTL; w-b took slot 0 over. w-a must leave before it is kicked back and forth.
    rows = [worker("w-a"), worker("w-b"), slot(0, "w-b"), slot(1, "w-b")]
    decided = decide("w-a", rows, running=[0])
    assert decided.stop == (0,) and decided.keep == ()


def test_an_expired_lease_of_ones_own_is_still_renewed() -> None:
    # Nobody took it meanwhile: the holder keeps it (its fence had taken it off the broker).
    rows = [worker("w-a"), slot(0, "w-a", -1.0), slot(1, "w-a"), slot(2, "w-a")]
    decided = decide("w-a", rows, running=[0, 1, 2])
    assert decided.keep == (0, 1, 2) and decided.stop == () and decided.take == ()


def test_ones_own_row_for_a_slot_not_run_is_taken_again() -> None:
    rows = [worker("w-a"), slot(0, "w-a")]
    assert 0 in decide("w-a", rows).take


def test_a_spare_gets_a_slot_handed_back_by_the_most_loaded() -> None:
    rows = [worker("w-a"), worker("w-b"), worker("w-s"), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-b")]
    assert decide("w-b", rows, running=[1, 2]).release == (2,)
    assert decide("w-b", rows, running=[1, 2]).keep == (1,)
    assert decide("w-a", rows, running=[0]).release == ()
    assert decide("w-s", rows) == Plan()  # it waits; the freed slot is dealt to it next tick


def test_no_handing_back_without_a_spare_or_with_one_slot_each() -> None:
    rows = [worker("w-a"), worker("w-b"), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-b")]
    assert decide("w-b", rows, running=[1, 2]).release == ()
    four = [*rows[:2], worker("w-c"), worker("w-s"), slot(0, "w-a"), slot(1, "w-b"), slot(2, "w-c")]
    assert decide("w-b", four, running=[1]).release == ()


def test_a_spare_waits_when_every_slot_is_held_and_takes_the_first_that_expires() -> None:
    rows = [worker("w-a"), worker("w-b"), worker("w-c"), worker("w-s"), slot(0, "w-a"), slot(1, "w-b"),
            slot(2, "w-c")]
    assert decide("w-s", rows) == Plan()
    rows[2:4] = [worker("w-c", -1.0), worker("w-s")]
    rows[-1] = slot(2, "w-c", -0.1)
    assert decide("w-s", rows).take == (2,)


def test_rows_of_other_pools_and_slots_beyond_n_are_told_apart() -> None:
    other = SlotNames("central-other", 3)
    rows = [worker("w-a"), slot(0, "w-x", names=other), LeaseRow(NAMES.lease(5), "w-z", NOW + timedelta(seconds=5))]
    pool = read_pool(NAMES, "w-a", rows, NOW)
    assert pool.holders == {0: None, 1: None, 2: None} and pool.strange == (5,)
    assert decide("w-a", rows).strange == (5,)


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 5])
def test_every_slot_is_held_once_the_ticks_settle(workers: int) -> None:
    """Workers ticking in turn, from nothing, end with every slot held once and a fair spread."""
    names = [f"w-{i}" for i in range(workers)]
    held: dict[int, str] = {}
    for _round in range(4):
        for me in names:
            rows = [worker(w) for w in names] + [slot(k, h) for k, h in held.items()]
            mine = [k for k, h in held.items() if h == me]
            decided = decide(me, rows, running=mine)
            for k in (*decided.stop, *decided.release):
                held.pop(k, None)
            for k in decided.take:
                held.setdefault(k, me)
    assert sorted(held) == [0, 1, 2]
    counts = [sum(1 for h in held.values() if h == w) for w in names]
    assert max(counts) - min(counts) <= 1 if workers <= 3 else max(counts) == 1
