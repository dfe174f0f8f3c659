"""The detection slots go to the waiting sample with the nearest deadline, never to a latecomer."""

from __future__ import annotations

import threading
import time

import pytest

from edge.inference_gate import InferenceGate


def _wait_for_waiters(gate: InferenceGate, n: int) -> None:
    deadline = time.monotonic() + 5
    while gate.waiting < n:
        assert time.monotonic() < deadline, f"only {gate.waiting} of {n} threads queued"
        time.sleep(0.005)


def test_released_slot_goes_to_the_nearest_deadline_not_the_first_to_ask() -> None:
    gate = InferenceGate(1)
    gate.acquire(deadline=0.0)
    served: list[str] = []

    def camera(name: str, deadline: float) -> None:
        with gate.slot(deadline):
            served.append(name)

    threads = []
    for name, deadline in (("late-deadline", 30.0), ("soon", 10.0), ("middle", 20.0)):
        t = threading.Thread(target=camera, args=(name, deadline))
        t.start()
        threads.append(t)
        _wait_for_waiters(gate, len(threads))
    gate.release()
    for t in threads:
        t.join(5)
    assert served == ["soon", "middle", "late-deadline"]


def test_a_newcomer_cannot_take_a_slot_handed_to_a_waiter() -> None:
    gate = InferenceGate(1)
    gate.acquire(deadline=0.0)
    got_it = threading.Event()
    waiter = threading.Thread(target=lambda: (gate.acquire(5.0), got_it.set()))
    waiter.start()
    _wait_for_waiters(gate, 1)
    gate.release()  # handed to the waiter, not returned to the pool
    assert got_it.wait(5)
    newcomer_got_slot = threading.Event()
    newcomer = threading.Thread(target=lambda: (gate.acquire(0.0), newcomer_got_slot.set()), daemon=True)
    newcomer.start()
    assert not newcomer_got_slot.wait(0.2)
    gate.release()
    assert newcomer_got_slot.wait(5)
    gate.release()
    waiter.join(5)


def test_free_slots_are_taken_without_waiting_and_over_release_is_an_error() -> None:
    gate = InferenceGate(2)
    gate.acquire(1.0)
    gate.acquire(2.0)
    gate.release()
    gate.release()
    with pytest.raises(RuntimeError, match="released more often"):
        gate.release()
