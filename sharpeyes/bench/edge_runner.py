"""Child process: the edge under test, exactly as ``sharpeyes edge run`` builds it, with timing probes.

The probes wrap two calls on each camera (the pipeline's ``process`` and the detector's
``detect``) to record when each sample was taken and how long inference took; they add two
clock reads per sample and change nothing else.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from sharpeyes.bench.child import ChildRun
from sharpeyes.bench.procstat import thread_cpu_by_kind


def _probe(worker: Any, records: list[list[float]], infer: threading.local) -> None:
    pipeline = worker.pipeline
    process = pipeline.process

    def timed_process(frame_bgr, t, wall, after_detect=None, detect=None):
        infer.seconds = 0.0
        infer.ran = False
        started = time.monotonic()
        try:
            return process(frame_bgr, t, wall, after_detect=after_detect, detect=detect)
        finally:
            # The last field: 1 when the detector ran, 0 when the scene gate reused its detections.
            records.append([t, started, time.monotonic(), infer.seconds, 1.0 if infer.ran else 0.0])

    pipeline.process = timed_process


def _probe_detector(detector: Any, infer: threading.local) -> None:
    if getattr(detector, "_bench_probed", False):
        return
    detect = detector.detect

    def timed_detect(frame_bgr, input_width=None):
        started = time.perf_counter()
        infer.ran = True
        try:
            return detect(frame_bgr, input_width)
        finally:
            infer.seconds = getattr(infer, "seconds", 0.0) + time.perf_counter() - started

    detector.detect = timed_detect
    detector._bench_probed = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sharpeyes bench: the edge under test")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--edge", required=True)
    parser.add_argument("--outbox", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from broker.siteconfig import load_site_config
    from edge.node import EdgeNode

    child = ChildRun(args.out)
    # `kill -USR1 <edge pid>` writes every thread's stack beside the results: where a stalled camera waits.
    stacks = open(args.out.with_suffix(".stacks"), "a")  # noqa: SIM115 - open for the process's life
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    node = EdgeNode(load_site_config(args.config), args.edge, args.outbox)
    infer = threading.local()
    records: dict[str, list[list[float]]] = {}
    node.start()
    for worker in node.workers:
        records[worker.camera.id] = []
        _probe_detector(worker.pipeline.detector, infer)
        _probe(worker, records[worker.camera.id], infer)

    def counters() -> dict[str, Any]:
        return {
            "cameras": {
                w.camera.id: {
                    "frames_in": w.reader.frames_in,
                    "frames_decoded": w.reader.frames_decoded,
                    "decode_s": w.decode_seconds,
                    "reconnects": w.reader.reconnects,
                    # The main stream beside a sub-stream: packets demuxed (an on-demand stream's only while open).
                    "main_packets": w.evidence_reader.frames_in if w.sub_stream else 0,
                }
                for w in node.workers
            },
            "outbox_depth": node.outbox.depth()[0],
            "threads": thread_cpu_by_kind(),
        }

    try:
        child.run_until_stopped(lambda: all(len(r) >= 2 for r in records.values()), counters,
                                partial=lambda: {"samples": {k: list(v) for k, v in records.items()}})
    finally:
        # Records first: stopping 32 cameras one after another may take longer than the parent waits.
        child.dump({"samples": records})
        stopper = threading.Thread(target=node.stop, daemon=True)
        stopper.start()
        stopper.join(10)
        os._exit(0)


if __name__ == "__main__":
    main()
