"""The node's evidence finisher: alarms' clips are finished one after another on its own thread,
so that a burst of alarms costs one core for a moment instead of every camera's next sample."""

from __future__ import annotations

import threading
import time

from edge.evidence_finisher import EvidenceFinisher


def test_jobs_run_in_turn_on_one_thread_and_a_failing_one_spoils_nothing() -> None:
    finisher = EvidenceFinisher()
    finisher.start()
    ran: list[tuple[int, str]] = []
    busy = threading.Lock()
    overlaps = []

    def job(i: int) -> None:
        if not busy.acquire(blocking=False):
            overlaps.append(i)
            return
        try:
            time.sleep(0.01)
            if i == 3:
                raise RuntimeError("a clip that would not mux")
            ran.append((i, threading.current_thread().name))
        finally:
            busy.release()

    # Submitting returns at once, whatever the job costs: the camera's worker goes back to its samples.
    for i in range(8):
        finisher.submit(lambda i=i: job(i))
    finisher.stop()  # what was queued is finished before the node closes its outbox
    assert [i for i, _ in ran] == [0, 1, 2, 4, 5, 6, 7]
    assert {name for _, name in ran} == {"evidence-finisher"}
    assert overlaps == []


def test_a_slow_job_does_not_hold_the_submitter() -> None:
    finisher = EvidenceFinisher()
    finisher.start()
    release = threading.Event()
    finisher.submit(lambda: release.wait(10))
    submitted = threading.Event()
    worker = threading.Thread(target=lambda: (finisher.submit(lambda: None), submitted.set()))
    worker.start()
    assert submitted.wait(5)  # queued behind the slow one, not waiting for it
    assert finisher.pending() >= 1
    release.set()
    finisher.stop()
    assert finisher.pending() == 0


def test_before_start_a_job_runs_in_the_caller() -> None:
    finisher = EvidenceFinisher()
    ran = []
    finisher.submit(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]
