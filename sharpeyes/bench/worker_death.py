"""`sharpeyes bench worker-death`: an ingest worker killed with kill -9 for good, mid-stream (issue 27).

Central's ingest workers share ``$share/central/...`` on Mosquitto. A member with a persistent
session keeps being handed its share while it is dead (queued until a client with its id returns
or the session expires). Each way of naming the workers' sessions is measured on real parts: a
private Mosquitto, a fresh PostgreSQL database, W real ``sharpeyes central ingest`` processes and
an edge's real outbox and publisher (``sharpeyes.chaos.edge_child``) publishing a paced stream of
start events, one incident each. Halfway through, one worker is killed (its process group, with
SIGKILL) and never restarted.

Ways:

- ``slots`` (a): ``--slots W``: client ids held through leases; a survivor takes the dead worker's
  over and drains its session (central/ingest/slots.py);
- ``short`` (b): a fixed client id per worker with ``--session-expiry 0``: the broker drops the
  dead member, and what it had in flight for it, at once; the edge's receipts bring that back
  (resent after ``receipt_timeout_s``);
- ``fixed``: a fixed client id per worker, 7-day sessions (before slots; the baseline of issue 27).

Each way runs twice from scratch: without receipts (the edge forgets a message at the broker's
PUBACK, so what is missing at the end is what the broker lost or stranded), then with receipts
(what is stored in the end, with duplicates and latency). Figures:

- lost at the broker: published minus stored, without receipts, once nothing more arrives;
- stored: distinct event ids in the database at the end, with receipts;
- duplicates: messages central got again after storing them (the workers' ``duplicate`` outcomes,
  from their clean stop; the killed worker's own are unknown);
- dead share flows again: the events published in the first second after the kill, all stored
  how long after the kill (without receipts, so it is the broker and central alone); "never" when
  some of them never arrive;
- p99 / max latency: event (its ``observed_at``, set when it enters the outbox) to central
  (``received_at``; the commit follows within the group-commit window), with receipts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from broker.mosquitto import MosquittoProcess
from broker.payloads import DetectedObject, HazardEvent, HazardKind, ModelRef, Phase
from broker.topics import event_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import HELLO_WAIT_S, RECEIPT_TIMEOUT_S
from sharpeyes.bench.central_bench.pgdb import fresh_database, pg_server_url
from sharpeyes.chaos.parts import wait_for

WAYS = ("slots", "short", "fixed")
SITE, EDGE, CAMERA = "chaos", "edge-1", "gate"  # the chaos edge child's identity
# Without receipts: after the stream, wait this long past the kill's takeover for stragglers.
SETTLE_S = 30.0


class WorkerDeathError(RuntimeError):
    """A part did not start or the run could not finish; the message says which and why."""


@dataclass
class Options:
    events: int = 2000
    workers: int = 3
    rate: float = 200.0  # events/s into the edge's outbox
    ways: tuple[str, ...] = ("slots", "short")
    receipt_timeout_s: float = RECEIPT_TIMEOUT_S
    database_url: str | None = None  # a PostgreSQL server on which databases may be created
    workdir: Path | None = None


@dataclass
class PhaseFigures:
    receipts: bool
    published: int = 0
    stored: int = 0
    duplicates: int = 0
    flows_again_s: float | None = None  # None: some never arrived
    p50_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None
    resends: int | None = None
    seconds: float = 0.0
    killed: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class WayResult:
    way: str
    broker: PhaseFigures | None = None
    receipts: PhaseFigures | None = None

    def row(self) -> dict[str, Any]:
        b, r = self.broker, self.receipts
        either = r or b
        return {
            "way": self.way,
            "published": either.published if either is not None else 0,
            "lost_at_broker": None if b is None else b.published - b.stored,
            "stored_with_receipts": None if r is None else r.stored,
            "duplicates": None if r is None else r.duplicates,
            "dead_share_flows_again_s": None if b is None else b.flows_again_s,
            "p50_latency_s": None if r is None else r.p50_s,
            "p99_latency_s": None if r is None else r.p99_s,
            "max_latency_s": None if r is None else r.max_s,
            "edge_resend_rounds": None if r is None else r.resends,
        }


# -- the parts ------------------------------------------------------------------------------------------

def _site_file(folder: Path, port: int) -> Path:
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": port, "protocol": "5"},
        "edges": [{"id": EDGE, "cameras": [{"id": CAMERA, "url": "rtsp://127.0.0.1:1/none"}]}],
    }))
    return path


@dataclass
class _Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    client_id: str | None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise WorkerDeathError(f"{self.name} exited ({self.proc.returncode}):\n" + "\n".join(
                self.text().splitlines()[-15:]))


def _start_worker(n: int, way: str, opts: Options, folder: Path, site: Path, url: str) -> _Worker:
    common = [sys.executable, "-m", "sharpeyes", "central", "ingest", "--config", str(site), "--database-url", url,
              "--evidence-dir", str(folder / "evidence"), "--shared-group", "central", "--log-level", "info"]
    client_id = None
    if way == "slots":
        args = ["--slots", str(opts.workers), "--slot-prefix", "bench"]
    else:
        client_id = f"bench-w{n}"
        args = ["--mqtt-client-id", client_id] + (["--session-expiry", "0"] if way == "short" else [])
    log = folder / f"worker-{n}.log"
    env = {**os.environ, "SHARPEYES_VAR_DIR": str(folder / "var"), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(common + args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: kill -9 takes its receiving processes too
    return _Worker(f"worker-{n}", proc, log, client_id)


def _ready(workers: list[_Worker], way: str, url: str) -> bool:
    for worker in workers:
        worker.check()
    if way != "slots":
        return all(f"ingest worker {w.client_id} ready" in w.text() for w in workers)
    from sqlalchemy import text

    from central.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            holders = [h for (h,) in conn.execute(text(
                "SELECT holder FROM leases WHERE name LIKE 'ingest-slot-%@bench' AND expires_at > :now"),
                {"now": datetime.now(UTC)})]
    finally:
        engine.dispose()
    pids = {h.split(":")[-2] for h in holders}
    subscribed = all("MQTT subscribed on" in w.text() for w in workers)
    return len(holders) == len(workers) and len(pids) == len(workers) and subscribed


def _events(n: int, start: int, now: datetime) -> list[OutboxMessage]:
    """Start events of incidents of their own (a zone each: no episode merging), observed at NOW."""
    rows = []
    for i in range(start, start + n):
        event = HazardEvent(
            event_id=uuid.uuid4(), incident_key=f"wd-{i}-{uuid.uuid4().hex[:6]}", hazard=HazardKind.FIRE_LANE_BLOCKED,
            phase=Phase.START, site=SITE, edge=EDGE, camera=CAMERA, zone=f"z{i}", started_at=now, observed_at=now,
            seq=1, score=0.9, objects=[DetectedObject(label="car", score=0.9, box=(0.1, 0.5, 0.3, 0.9))],
            model=ModelRef(name="yolov8n", sha256="0" * 64))
        rows.append(OutboxMessage(event_topic(SITE, EDGE), event.to_wire(), "event", str(event.event_id)))
    return rows


def _stored(url: str) -> list[tuple[str, datetime, datetime]]:
    from sqlalchemy import select

    from central.store.db import make_engine
    from central.store.tables import Event

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [(str(e), o, r) for e, o, r in conn.execute(select(Event.event_id, Event.observed_at,
                                                                        Event.received_at))]
    finally:
        engine.dispose()


def _count(url: str) -> int:
    from sqlalchemy import func, select

    from central.store.db import make_engine
    from central.store.tables import Event

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count(func.distinct(Event.event_id)))) or 0)
    finally:
        engine.dispose()


def _outcomes(worker: _Worker) -> dict[str, int]:
    found = re.findall(r"outcomes: (.*)", worker.text())
    if not found:
        return {}
    return {k: int(v) for k, v in (item.split("=") for item in found[-1].split(", ") if "=" in item)}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_phase(way: str, receipts: bool, opts: Options, folder: Path, progress: Callable[[str], None]) -> PhaseFigures:
    from central.store.db import make_engine
    from central.store.migrate import upgrade
    from sharpeyes.chaos.parts import Edge

    folder.mkdir(parents=True, exist_ok=True)
    figures = PhaseFigures(receipts=receipts)
    started = time.monotonic()
    broker = MosquittoProcess(data_dir=folder / "mosquitto").start()
    workers: list[_Worker] = []
    edge: Edge | None = None
    try:
        with fresh_database(pg_server_url(opts.database_url)) as (url, _admin, _name):
            engine = make_engine(url)
            upgrade(engine)  # once, before the workers (they would all migrate at once)
            engine.dispose()
            site = _site_file(folder, broker.port)
            workers = [_start_worker(n, way, opts, folder, site, url) for n in range(opts.workers)]
            wait_for(lambda: _ready(workers, way, url), 180, f"{opts.workers} {way} workers to subscribe", 0.5)
            edge = the_edge = Edge(folder, broker.port, receipt_timeout_s=opts.receipt_timeout_s,
                                   receipts=receipts).start()
            if receipts:
                wait_for(lambda: the_edge.status().get("receipts_active"), 60, "central's hello to reach the edge")
            else:
                wait_for(lambda: the_edge.status().get("connected"), 60, "the edge to connect")
                time.sleep(HELLO_WAIT_S + 0.5)
            box = Outbox(the_edge.outbox_path)
            progress(f"{way}, receipts {'on' if receipts else 'off'}: streaming {opts.events} events at "
                     f"{opts.rate:g}/s; {workers[0].name} is killed halfway")
            kill_at: datetime | None = None
            published: dict[str, datetime] = {}  # event id -> observed_at
            chunk = max(1, int(opts.rate / 20))
            begin = time.monotonic()
            sent = 0
            while sent < opts.events:
                if kill_at is None and sent >= opts.events // 2:
                    os.killpg(workers[0].proc.pid, signal.SIGKILL)
                    workers[0].proc.wait(30)
                    kill_at = datetime.now(UTC)
                    figures.killed = workers[0].name
                n = min(chunk, opts.events - sent)
                observed = datetime.now(UTC)
                rows_in = _events(n, sent, observed)
                box.put_many(rows_in)
                published.update((str(m.key), observed) for m in rows_in)
                sent += n
                pause = begin + sent / opts.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            assert kill_at is not None
            figures.published = sent
            stream_end = time.monotonic()
            if receipts:
                # Every event receipted (the outbox empty), or give up after several resend rounds.
                limit = max(120.0, 6 * opts.receipt_timeout_s)
                deadline = stream_end + limit
                while time.monotonic() < deadline and box.depth()[0] > 0:
                    time.sleep(0.5)
                if box.depth()[0] > 0:
                    figures.notes.append(f"{box.depth()[0]} event(s) still unreceipted {limit:.0f} s after the stream")
            else:
                deadline = stream_end + SETTLE_S
                while time.monotonic() < deadline and _count(url) < sent:
                    time.sleep(0.5)
            figures.resends = the_edge.status().get("resends")
            box.close()
            the_edge.stop()
            edge = None
            for worker in workers[1:]:
                _stop(worker.proc)
                outcomes = _outcomes(worker)
                figures.duplicates += outcomes.get("duplicate", 0)
            rows = _stored(url)
    finally:
        if edge is not None:
            edge.stop()
        for worker in workers:
            if worker.proc.poll() is None:
                os.killpg(worker.proc.pid, signal.SIGKILL)
                worker.proc.wait()
        broker.stop()
    figures.stored = len({event_id for event_id, _o, _r in rows})
    latencies = [(r - o).total_seconds() for _e, o, r in rows]
    figures.p50_s, figures.p99_s = _quantile(latencies, 0.5), _quantile(latencies, 0.99)
    figures.max_s = max(latencies) if latencies else None
    # The events published in the first second after the kill: when the last of them was stored
    # (None when some never were).
    received = {event_id: r for event_id, _o, r in rows}
    window = [event_id for event_id, at in published.items() if kill_at <= at < kill_at + timedelta(seconds=1)]
    if window and all(event_id in received for event_id in window):
        figures.flows_again_s = max((received[event_id] - kill_at).total_seconds() for event_id in window)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def run(opts: Options, progress: Callable[[str], None]) -> list[WayResult]:
    unknown = set(opts.ways) - set(WAYS)
    if unknown or not opts.ways:
        raise WorkerDeathError(f"--ways takes {', '.join(WAYS)}")
    if opts.workers < 2:
        raise WorkerDeathError("--workers must be at least 2 (one is killed)")
    results = []
    with tempfile.TemporaryDirectory(prefix="sharpeyes-worker-death-") as tmp:
        root = opts.workdir or Path(tmp)
        for way in opts.ways:
            result = WayResult(way)
            result.broker = run_phase(way, False, opts, root / way / "broker", progress)
            result.receipts = run_phase(way, True, opts, root / way / "receipts", progress)
            results.append(result)
    return results


def to_json(results: list[WayResult]) -> str:
    return json.dumps([{**r.row(), "phases": {"broker": asdict(r.broker) if r.broker else None,
                                               "receipts": asdict(r.receipts) if r.receipts else None}}
                       for r in results], default=str, indent=2)


def markdown(results: list[WayResult], opts: Options) -> str:
    def seconds(value: float | None, never: str = "—") -> str:
        return never if value is None else f"{value:.2f}"

    lines = [f"worker death: {opts.events} events at {opts.rate:g}/s through an edge's outbox, {opts.workers} "
             f"`central ingest` workers on one PostgreSQL, one killed (-9) for good halfway; Mosquitto "
             f"{_mosquitto_version()}, edge receipt timeout {opts.receipt_timeout_s:g} s",
             "",
             "| way | lost at the broker (no receipts) | stored in the end (receipts) | duplicates | dead share "
             "flows again after (s) | latency p50 / p99 / max (s) | edge resend rounds |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        row = r.row()
        published = row["published"]
        lines.append(
            f"| {r.way} | {row['lost_at_broker']} of {published} | {row['stored_with_receipts']} of {published} | "
            f"{row['duplicates']} | {seconds(row['dead_share_flows_again_s'], 'never')} | "
            f"{seconds(row['p50_latency_s'])} / {seconds(row['p99_latency_s'])} / {seconds(row['max_latency_s'])} | "
            f"{row['edge_resend_rounds']} |")
    notes = [f"{r.way} ({phase.receipts and 'receipts' or 'no receipts'}): {note}"
             for r in results for phase in (r.broker, r.receipts) if phase is not None for note in phase.notes]
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else []))


def _mosquitto_version() -> str:
    try:
        from broker.mosquitto import find_mosquitto

        out = subprocess.run([str(find_mosquitto()), "-h"], capture_output=True, text=True, timeout=10).stdout
        match = re.search(r"version (\S+)", out)
        return match.group(1) if match else "?"
    except Exception:  # noqa: BLE001 - only a label
        return "?"
