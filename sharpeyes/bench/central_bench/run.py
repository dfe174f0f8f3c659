"""The two run modes: each contestant in turn on one private broker, with the same message mix."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sharpeyes.bench.central_bench.consumers import Tally, consumer_for
from sharpeyes.bench.central_bench.mix import publisher_main
from sharpeyes.bench.central_bench.options import BenchError, BenchOptions
from sharpeyes.bench.central_bench.result import BenchResult, Figures


def _cpu(pids: list[int]) -> float:
    from sharpeyes.bench.procstat import cpu_of

    return sum(cpu_of(pid).total_s for pid in pids)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run_contestant(name: str, opts: BenchOptions, port: int, workdir: Path,
                   progress: Callable[[str], None]) -> Figures:
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    pub = ctx.Process(target=publisher_main, args=(port, opts.events, opts.evidence_every, opts.rate, ready, go, done),
                      daemon=True)
    pub.start()
    if not ready.wait(120):
        raise BenchError("the publisher process did not start")
    client_id = f"bench-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    consumer = consumer_for(name, opts)
    if opts.mode == "backlog":
        # Subscribe once (the session keeps its queue), go offline, let the broker take the whole mix.
        consumer(port, Tally(), workdir, client_id)()
        progress(f"{name}: publishing {opts.events} events while it is offline")
        go.set()
        if not done.wait(opts.timeout_s):
            raise BenchError("the publisher did not finish")
        progress(f"{name}: connecting to drain the backlog")
    tally = Tally()
    stop = consumer(port, tally, workdir, client_id)
    if opts.mode == "live":
        progress(f"{name}: publishing {opts.events} events" + (f" at {opts.rate:g}/s" if opts.rate else ""))
    pids = [os.getpid(), *tally.helper_pids]
    cpu_before = _cpu(pids)
    go.set()
    deadline = time.monotonic() + opts.timeout_s
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        with tally.lock:
            count = tally.count
        if count >= opts.events:
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif done.is_set() and time.monotonic() - last_change > 10:
            break  # the publisher is done and nothing arrived for 10 s: the rest is lost
        time.sleep(0.05)
    cpu_used = _cpu(pids) - cpu_before
    pub.join(30)
    counts = stop()
    fig = Figures(name, opts.events, received=tally.count)
    if tally.first is not None and tally.last is not None and tally.count > 1:
        fig.seconds = round(tally.last - tally.first, 3)
        fig.events_per_s = round((tally.count - 1) / max(tally.last - tally.first, 1e-9), 1)
    fig.p50_ms, fig.p99_ms = _pct(tally.latencies, 0.5), _pct(tally.latencies, 0.99)
    fig.cpu_s = round(cpu_used, 2)
    if tally.count:
        fig.cpu_us_per_event = round(cpu_used / tally.count * 1e6, 1)
    fig.lost = opts.events - counts["distinct"]
    fig.duplicated = counts["stored"] - counts["distinct"]
    progress(f"{name}: {fig.events_per_s} events/s, p50 {fig.p50_ms} ms, p99 {fig.p99_ms} ms, lost {fig.lost}")
    return fig


def broker_data_parent(where: str) -> str | None:
    """Where the bench broker keeps its persistence: ``memory`` (/dev/shm) or ``disk`` (the temp dir).

    Mosquitto saves its whole store every 10 s; holding a backlog of 20,000 events and 4,000
    snapshots that is 250 MB a save. On the disk that holds central's database and evidence,
    central's per-batch sync (the one ``syncfs`` that makes a burst's blobs durable) then waits for
    the broker's writes too, which a deployment does not do: there the broker has its own host."""
    if where == "disk":
        return None
    if where == "memory" and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    raise BenchError(f"--broker-data is memory or disk, not {where!r} (memory needs a writable /dev/shm)")


def run_bench(opts: BenchOptions, progress: Callable[[str], None] = lambda _t: None) -> BenchResult:
    from broker.mosquitto import MosquittoProcess

    result = BenchResult(opts)
    with tempfile.TemporaryDirectory(prefix="sharpeyes-bench-central-") as tmp, \
            tempfile.TemporaryDirectory(prefix="sharpeyes-bench-broker-", dir=broker_data_parent(opts.broker_data)) as mq:
        root = Path(tmp)
        with MosquittoProcess(data_dir=Path(mq)) as broker:
            for name in opts.contestants:
                workdir = root / name
                workdir.mkdir()
                result.figures[name] = run_contestant(name, opts, broker.port, workdir, progress)
    return result
