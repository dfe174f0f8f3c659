"""The bench's CPU breakdown by kind of edge thread, read from /proc for this very process."""

from __future__ import annotations

import threading
import time

from sharpeyes.bench.procstat import THREAD_KINDS, thread_cpu_by_kind, thread_kind


def test_threads_are_told_apart_by_the_names_the_edge_gives_them() -> None:
    assert thread_kind("worker-cam-001") == "workers"
    assert thread_kind("camera-cam-001") == "detection_readers"
    assert thread_kind("camera-cam-001 (evidence stream)") == "main_readers"
    assert thread_kind("MainThread") == "other" and thread_kind("paho-mqtt-client-") == "other"


def test_a_busy_worker_thread_is_counted_as_a_worker() -> None:
    done = threading.Event()
    spun = threading.Event()

    def spin() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.3:  # CPU time, not wall time: a loaded box only slows it
            pass
        spun.set()
        done.wait(10)  # stay alive until measured: a finished thread's CPU is no longer its own

    before = thread_cpu_by_kind()
    worker = threading.Thread(target=spin, name="worker-cam-test", daemon=True)
    worker.start()
    assert spun.wait(60)
    after = thread_cpu_by_kind()
    done.set()
    worker.join(10)
    assert set(after) == set(THREAD_KINDS)
    assert after["workers"] - before["workers"] >= 0.25
    assert after["main_readers"] == before["main_readers"] == 0.0
