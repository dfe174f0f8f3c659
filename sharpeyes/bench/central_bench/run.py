"""The two run modes: each contestant in turn on one private broker, with the same message mix;
with ``--workers``, per round the floor and then each count of ``central ingest`` workers."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sharpeyes.bench.central_bench.consumers import Tally, consumer_for
from sharpeyes.bench.central_bench.mix import publisher_main
from sharpeyes.bench.central_bench.options import BenchError, BenchOptions
from sharpeyes.bench.central_bench.result import BenchResult, Figures, ScalingResult, percentile


def _cpu(pids: list[int]) -> float:
    from sharpeyes.bench.procstat import cpu_of

    return sum(cpu_of(pid).total_s for pid in pids)


def run_contestant(name: str, opts: BenchOptions, port: int, workdir: Path,
                   progress: Callable[[str], None], database_url: str | None = None) -> Figures:
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    pub = ctx.Process(target=publisher_main, args=(port, opts.events, opts.evidence_every, opts.rate, ready, go, done),
                      daemon=True)
    pub.start()
    if not ready.wait(120):
        raise BenchError("the publisher process did not start")
    client_id = f"bench-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    consumer = consumer_for(name, opts, database_url)
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
    fig.p50_ms, fig.p99_ms = percentile(tally.latencies, 0.5), percentile(tally.latencies, 0.99)
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


@contextmanager
def central_database(opts: BenchOptions, workdir: Path) -> Iterator[tuple[str, tuple[Any, str] | None]]:
    """A fresh database for one measurement of central: (its URL, and for a PostgreSQL server on this
    machine its admin connection and name, so that its server processes' CPU can be read)."""
    if opts.database == "sqlite":
        yield f"sqlite:///{workdir / 'central.db'}", None
        return
    from sharpeyes.bench.central_bench.pgdb import fresh_database, pg_server_url

    server = pg_server_url(opts.database_url)
    local = urlsplit(server).hostname in (None, "", "127.0.0.1", "localhost", "::1")
    with fresh_database(server) as (url, admin, name):
        yield url, ((admin, name) if local else None)


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
                if name == "central":
                    with central_database(opts, workdir) as (url, _pg):
                        result.figures[name] = run_contestant(name, opts, broker.port, workdir, progress, url)
                else:
                    result.figures[name] = run_contestant(name, opts, broker.port, workdir, progress)
    return result


def run_scaling(opts: BenchOptions, progress: Callable[[str], None] = lambda _t: None) -> ScalingResult:
    """``--workers``: per round the floor, then each worker count on a fresh database, one broker."""
    from broker.mosquitto import MosquittoProcess
    from sharpeyes.bench.central_bench.workers import run_workers

    result = ScalingResult(opts)
    with tempfile.TemporaryDirectory(prefix="sharpeyes-bench-central-") as tmp, \
            tempfile.TemporaryDirectory(prefix="sharpeyes-bench-broker-", dir=broker_data_parent(opts.broker_data)) as mq:
        root = Path(tmp)
        with MosquittoProcess(data_dir=Path(mq)) as broker:
            proc = getattr(broker, "_proc", None)
            broker_pid = getattr(proc, "pid", None)
            for round_ in range(opts.repeat):
                prefix = f"round {round_ + 1}/{opts.repeat}: " if opts.repeat > 1 else ""

                def say(text: str, prefix: str = prefix) -> None:
                    progress(prefix + text)

                workdir = root / f"r{round_}-floor"
                workdir.mkdir()
                floor = run_contestant("floor", opts, broker.port, workdir, say)
                result.floors.append(floor)
                for count in opts.workers:
                    workdir = root / f"r{round_}-w{count}"
                    workdir.mkdir()
                    with central_database(opts, workdir) as (url, pg):
                        run = run_workers(count, opts, broker.port, workdir, url, pg, broker_pid, say)
                    run.round, run.floor_events_per_s = round_, floor.events_per_s
                    result.runs.append(run)
    return result
