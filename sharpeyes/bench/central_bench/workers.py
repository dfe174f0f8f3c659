"""Central as N ``sharpeyes central ingest`` processes on one MQTT 5 shared subscription
(``$share/GROUP/...``), one database and one evidence folder (the filesystem store): how the
events/s grow with the number of workers.

One measurement, N workers:
1. the schema is brought up once (N workers migrating a fresh database at once would race);
2. N worker processes start, each in a session of its own, and connect and subscribe (each logs
   ``ingest worker ID ready``); the first alone, since the first start on a fresh database takes
   the site file's edges into the inventory and two workers doing that at once collide;
3. backlog mode: every worker (and its receiving process) is stopped with SIGSTOP while the
   publisher puts the whole mix into the broker, which queues each message for one member of the
   group; then all are continued at once (SIGCONT), so that they start draining together with
   warm processes instead of one after another as they finish importing. Live mode: the publisher
   publishes while they run;
4. the bench polls the events table every ``POLL_S``: events/s = events committed between the
   first poll that saw a row and the poll that saw the last one, divided by the time between the
   two polls; publish → commit latency is the poll that first saw a row minus the publish stamp
   in its ``observed_at`` (so up to ``POLL_S`` late);
5. CPU from the go (SIGCONT, or the publisher's start) to the last commit: the workers and every
   process they started, the PostgreSQL server processes serving this database (when the server
   runs on this machine), and the bench's Mosquitto;
6. the rows are counted: events stored, distinct ``event_id``s, and the sum of the incidents'
   ``event_count`` (each event folded into its incident once); a run that stored anything other
   than each published event exactly once is reported as failed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sharpeyes.bench.central_bench.mix import CAMERAS, EDGE, SITE, publisher_main
from sharpeyes.bench.central_bench.options import BenchError, BenchOptions
from sharpeyes.bench.central_bench.result import WorkerRun, percentile

POLL_S = 0.05
READY_TIMEOUT_S = 120.0
# The publisher is done and no row came for this long: the rest is lost.
STALL_S = 15.0


def write_site(path: Path, port: int) -> None:
    """The site file the workers load: the mix's edge and cameras, the bench broker, MQTT 5."""
    import yaml

    path.write_text(yaml.safe_dump({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": port, "protocol": "5"},
        "edges": [{"id": EDGE, "cameras": [{"id": f"cam-{i}", "url": "rtsp://127.0.0.1/x", "grid_cell": "g1"}
                                           for i in range(CAMERAS)]}],
        "grid": [{"code": "g1", "name": "Grid", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "W"}],
    }))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (each thread lists the children it started)."""
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                stack.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                pass
    return out


class CpuMeter:
    """CPU seconds a set of processes used since ``start``; a process that goes keeps its last figure,
    one that comes later counts from zero."""

    def __init__(self) -> None:
        self.base: dict[int, float] = {}
        self.seen: dict[int, float] = {}

    @staticmethod
    def _read(pid: int) -> float | None:
        from sharpeyes.bench.procstat import cpu_of

        try:
            return cpu_of(pid).total_s
        except (OSError, ValueError, IndexError):
            return None

    def start(self, pids: list[int]) -> None:
        for pid in pids:
            value = self._read(pid)
            if value is not None:
                self.base[pid] = self.seen[pid] = value

    def read(self, pids: list[int]) -> float:
        for pid in pids:
            value = self._read(pid)
            if value is not None:
                self.seen[pid] = value
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())


class CommitWatch:
    """Polls the events table: how many rows are committed, and when each was first seen.

    Ids come from a sequence and concurrent transactions commit out of order, so each poll reads
    every row above a low-water mark (all ids at or below it seen) and keeps the ids above it; a
    gap that stays (a rolled-back insert's ids) is stepped over after a second."""

    def __init__(self, url: str) -> None:
        from central.store.db import make_engine

        self.engine = make_engine(url)
        self.low = 0
        self.above: set[int] = set()
        self.gap_since: float | None = None
        self.count = 0
        self.latencies: list[float] = []
        self.backend_pid: int | None = None
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with self.engine.connect() as conn:
                self.backend_pid = conn.scalar(text("SELECT pg_backend_pid()"))

    def poll(self) -> int:
        from sqlalchemy import select

        from central.store.tables import Event

        with self.engine.connect() as conn:
            rows = conn.execute(select(Event.id, Event.observed_at).where(Event.id > self.low)).all()
        now = datetime.now(UTC)
        for row_id, observed in rows:
            if row_id not in self.above:
                self.above.add(row_id)
                self.count += 1
                if observed.tzinfo is None:
                    observed = observed.replace(tzinfo=UTC)
                self.latencies.append((now - observed).total_seconds() * 1000.0)
        self._advance()
        return self.count

    def _advance(self) -> None:
        while self.low + 1 in self.above:
            self.low += 1
            self.above.discard(self.low)
        if not self.above:
            self.gap_since = None
            return
        if self.gap_since is None:
            self.gap_since = time.monotonic()
        elif time.monotonic() - self.gap_since > 1.0:
            self.low = min(self.above) - 1
            self.gap_since = None
            self._advance()

    def totals(self) -> tuple[int, int, int]:
        """(event rows, distinct event ids, sum of the incidents' event counts)."""
        from sqlalchemy import func, select

        from central.store.tables import Event, Incident

        with self.engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Event)) or 0
            distinct = conn.scalar(select(func.count(func.distinct(Event.event_id)))) or 0
            folded = conn.scalar(select(func.coalesce(func.sum(Incident.event_count), 0))) or 0
        return int(stored), int(distinct), int(folded)

    def close(self) -> None:
        self.engine.dispose()


def _spawn_worker(index: int, opts: BenchOptions, config: Path, url: str, workdir: Path, group: str,
                  tag: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    client_id = f"bench-w{index}-{tag}"
    log = workdir / f"worker-{index}.log"
    argv = [sys.executable, "-m", "sharpeyes", "central", "ingest", "--config", str(config), "--database-url", url,
            "--evidence-dir", str(workdir / "evidence"), "--mqtt-client-id", client_id, "--shared-group", group,
            "--log-level", "info"]
    if opts.batch_window_ms is not None:
        argv += ["--batch-window-ms", f"{opts.batch_window_ms:g}"]
    env = {**os.environ, "SHARPEYES_VAR_DIR": str(workdir / "var"), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as err:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # its own process group: SIGSTOP/SIGCONT reach its children
    return proc, log, client_id


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(workers: list[tuple[subprocess.Popen[bytes], Path, str]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(workers)
    while waiting:
        for worker in list(waiting):
            proc, log, client_id = worker
            if proc.poll() is not None:
                raise BenchError(f"ingest worker {client_id} exited ({proc.returncode}):\n{_tail(log)}")
            try:
                if f"ingest worker {client_id} ready" in log.read_text(errors="replace"):
                    waiting.remove(worker)
            except OSError:
                pass
        if waiting and time.monotonic() > deadline:
            raise BenchError(f"ingest worker {waiting[0][2]} did not connect within {READY_TIMEOUT_S:.0f} s:\n"
                             f"{_tail(waiting[0][1])}")
        time.sleep(0.1)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path, str]]) -> None:
    for proc, _log, _id in workers:
        _signal_group(proc, signal.SIGCONT)
        if proc.poll() is None:
            proc.terminate()
    for proc, _log, _id in workers:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(10)
        _signal_group(proc, signal.SIGKILL)  # a receiving process left behind


def run_workers(count: int, opts: BenchOptions, port: int, workdir: Path, url: str, pg: tuple[Any, str] | None,
                broker_pid: int | None, progress: Any) -> WorkerRun:
    """One measurement: ``count`` ingest workers drain (or consume) the mix into the database at ``url``.

    ``pg``: the admin connection and the database's name when it is PostgreSQL (for its server
    processes' CPU)."""
    from central.store.db import make_engine
    from central.store.migrate import upgrade
    from sharpeyes.bench.central_bench.pgdb import backend_pids

    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    config = workdir / "site.yaml"
    write_site(config, port)
    tag = uuid.uuid4().hex[:6]
    group = f"bench-{tag}"
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    pub = ctx.Process(target=publisher_main, args=(port, opts.events, opts.evidence_every, opts.rate, ready, go, done),
                      daemon=True)
    pub.start()
    # The first worker starts alone: on a fresh database it takes the site file's edges into the
    # inventory, and two workers doing that at once collide on the first version's unique key.
    workers = [_spawn_worker(0, opts, config, url, workdir, group, tag)]
    watch = CommitWatch(url)
    run = WorkerRun(workers=count, events=opts.events)
    try:
        _wait_ready(workers)
        workers += [_spawn_worker(i, opts, config, url, workdir, group, tag) for i in range(1, count)]
        _wait_ready(workers[1:])
        if not ready.wait(120):
            raise BenchError("the publisher process did not start")
        worker_pids = [descendants(proc.pid) for proc, _l, _i in workers]

        def pg_pids() -> list[int]:
            if pg is None:
                return []
            return [p for p in backend_pids(*pg) if p != watch.backend_pid]

        if opts.mode == "backlog":
            for proc, _l, _i in workers:
                _signal_group(proc, signal.SIGSTOP)
            progress(f"{count} worker(s): publishing {opts.events} events while they are stopped")
            go.set()
            if not done.wait(opts.timeout_s):
                raise BenchError("the publisher did not finish")
            progress(f"{count} worker(s): draining the backlog")
        else:
            progress(f"{count} worker(s): publishing {opts.events} events" + (f" at {opts.rate:g}/s" if opts.rate else ""))
        meters = {"postgresql": CpuMeter(), "broker": CpuMeter()}
        per_worker = [CpuMeter() for _ in workers]
        for meter, pids in zip(per_worker, worker_pids, strict=True):
            meter.start(pids)
        known_pg = pg_pids()
        meters["postgresql"].start(known_pg)
        meters["broker"].start([broker_pid] if broker_pid else [])
        if opts.mode == "backlog":
            for proc, _l, _i in workers:
                _signal_group(proc, signal.SIGCONT)
        else:
            go.set()
        deadline = time.monotonic() + opts.timeout_s
        first: tuple[float, int] | None = None
        last: tuple[float, int] | None = None
        last_change = time.monotonic()
        next_pg = time.monotonic() + 1.0
        cpu = {name: 0.0 for name in meters}
        split = [0.0 for _ in workers]
        while time.monotonic() < deadline:
            seen = watch.poll()
            now = time.monotonic()
            if pg is not None and now >= next_pg:
                known_pg = sorted(set(known_pg) | set(pg_pids()))
                next_pg = now + 1.0
            if seen and (last is None or seen != last[1]):
                last, last_change = (now, seen), now
                first = first or (now, seen)
                split = [meter.read(pids) for meter, pids in zip(per_worker, worker_pids, strict=True)]
                cpu = {"postgresql": meters["postgresql"].read(known_pg),
                       "broker": meters["broker"].read([broker_pid] if broker_pid else [])}
            if seen >= opts.events:
                break
            if done.is_set() and now - last_change > STALL_S:
                break
            time.sleep(POLL_S)
        pub.join(30)
        run.stored, run.distinct, run.folded = watch.totals()
    finally:
        _stop_workers(workers)
        watch.close()
        if pub.is_alive():
            pub.kill()
    run.received = watch.count
    if first is not None and last is not None:
        if last[0] > first[0] and last[1] > first[1]:
            run.seconds = round(last[0] - first[0], 3)
            run.events_per_s = round((last[1] - first[1]) / (last[0] - first[0]), 1)
        else:  # every row came in one poll: the poll interval bounds the time
            run.seconds = POLL_S
            run.events_per_s = round(last[1] / POLL_S, 1)
    run.p50_ms, run.p99_ms = percentile(watch.latencies, 0.5), percentile(watch.latencies, 0.99)
    run.cpu_s = round(sum(split), 2)
    run.cpu_s_by_worker = [round(v, 2) for v in split]
    if watch.count:
        per_1k = 1000.0 / watch.count
        run.cpu_s_per_1k = round(sum(split) * per_1k, 3)
        run.broker_cpu_s_per_1k = round(cpu["broker"] * per_1k, 3) if broker_pid else None
        run.postgresql_cpu_s_per_1k = round(cpu["postgresql"] * per_1k, 3) if pg is not None and known_pg else None
    run.lost = opts.events - run.distinct
    run.duplicated = run.stored - run.distinct
    progress(f"{count} worker(s): {run.events_per_s} events/s, {run.cpu_s_per_1k} CPU-s per 1k events "
             f"(CPU s by worker: {', '.join(f'{v:.2f}' for v in run.cpu_s_by_worker)}), "
             f"stored {run.distinct} of {opts.events}")
    return run
