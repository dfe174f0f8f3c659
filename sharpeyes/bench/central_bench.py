"""`sharpeyes bench central`: events through a real Mosquitto into central's ingest, against two baselines.

Two modes (``--mode``):
- backlog (the default at full speed): each contestant's persistent session is subscribed and
  offline while the publisher fills the broker with the whole mix; then it connects and drains it,
  as central does after a restart or an outage. The clock runs from its first commit to its last,
  with the two cores to itself and Mosquitto: what the consumer sustains, not how fast the bench's
  own publisher is (a Python publisher on the same two cores tops out near 5,000 events/s, so in
  live mode at full speed every contestant, even one that does nothing, measures the publisher).
- live (the default with ``--rate``): the consumer is connected while the publisher publishes;
  with a rate this is the latency run (publish → commit at a realistic load).

Contestants, one after another on the same private broker and the same message mix:
- floor: a bare paho subscriber that only counts (the broker-to-client ceiling);
- naive: the subscriber a user would write: parse JSON, one INSERT and one COMMIT per message (SQLite as
  sqlite3 opens it, rollback journal); naive_wal: the same with ``journal_mode=WAL``;
- central: ``MqttIngest`` + ``IngestService`` on SQLite, with full validation, incidents, workflow,
  evidence blobs, manual acknowledgement after commit.
The publisher runs in its own process and stamps each event's ``observed_at`` as it publishes it,
so publish-to-commit latency is the consumer's clock at commit minus that stamp (same machine).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SITE, EDGE = "bench", "edge-1"
PLACEHOLDER = "2000-01-01T00:00:00.000000Z"
EVENTS_PER_INCIDENT = 10
CAMERAS = 20
SNAPSHOT_BYTES = 60 * 1024
MODES = ("backlog", "live")
# The bench consumers' persistent sessions outlive a disconnect by this long (backlog mode).
SESSION_EXPIRY_S = 3600


class BenchError(RuntimeError):
    pass


@dataclass
class BenchOptions:
    events: int = 20000
    rate: float = 0.0  # events/s; 0: as fast as the publisher can
    evidence_every: int = 5  # one event in N carries a 60 KB JPEG snapshot; 0: none
    timeout_s: float = 300.0
    contestants: tuple[str, ...] = ("floor", "naive", "naive_wal", "central")
    mode: str = ""  # backlog or live; "" picks backlog at full speed and live with a rate
    broker_data: str = "memory"  # where the bench broker's persistence lives: memory or disk
    batch_window_ms: float | None = None  # central's group-commit window; None: central's default

    def __post_init__(self) -> None:
        if not self.mode:
            self.mode = "live" if self.rate > 0 else "backlog"
        if self.mode not in MODES:
            raise BenchError(f"mode is one of {', '.join(MODES)}, not {self.mode!r}")


@dataclass
class Figures:
    name: str
    events: int
    received: int = 0
    seconds: float | None = None
    events_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lost: int | None = None
    duplicated: int | None = None
    # CPU of the consumer (the bench process and any process it started, e.g. central's receiving
    # process) from the publisher's start to the last commit: less moved by other work than events/s.
    cpu_s: float | None = None
    cpu_us_per_event: float | None = None


@dataclass
class BenchResult:
    options: BenchOptions
    figures: dict[str, Figures] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        c, f, n, w = (self.figures.get(k) for k in ("central", "floor", "naive", "naive_wal"))
        out: dict[str, Any] = {
            "events": self.options.events, "rate": self.options.rate or None, "mode": self.options.mode,
            "batch_window_ms": self.options.batch_window_ms,
            "broker_data": self.options.broker_data,
            "evidence_every": self.options.evidence_every,
            "events_per_s": c.events_per_s if c else None, "p50_ms": c.p50_ms if c else None,
            "p99_ms": c.p99_ms if c else None, "lost": c.lost if c else None,
            "duplicated": c.duplicated if c else None,
            "floor_events_per_s": f.events_per_s if f else None,
            "naive_events_per_s": n.events_per_s if n else None,
            "naive_p99_ms": n.p99_ms if n else None, "naive_lost": n.lost if n else None,
            "naive_wal_events_per_s": w.events_per_s if w else None,
        }
        if c and n and c.events_per_s and n.events_per_s:
            out["central_vs_naive"] = round(c.events_per_s / n.events_per_s, 2)
        if c and w and c.events_per_s and w.events_per_s:
            out["central_vs_naive_wal"] = round(c.events_per_s / w.events_per_s, 2)
        if c and f and c.events_per_s and f.events_per_s:
            out["central_share_of_floor"] = round(c.events_per_s / f.events_per_s, 3)
        out["contestants"] = {k: asdict(v) for k, v in self.figures.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False)


# -- the message mix (built in the publisher process) -----------------------------------------------


def _jpeg(seed: int) -> bytes:
    body = os.urandom(SNAPSHOT_BYTES - 8) if seed >= 0 else b""
    return b"\xff\xd8\xff\xe0" + body + b"\xff\xd9" + seed.to_bytes(2, "big", signed=False)[:2]


def build_mix(events: int, evidence_every: int) -> list[tuple[str, bytes, bool]]:
    """(topic, payload with the observed_at placeholder, is_event); blobs precede the event naming them."""
    import hashlib

    from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
    from broker.topics import event_topic, evidence_topic

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[tuple[str, bytes, bool]] = []
    run = uuid.uuid4().hex[:8]
    for i in range(events):
        incident, step = divmod(i, EVENTS_PER_INCIDENT)
        phase = Phase.START if step == 0 else Phase.END if step == EVENTS_PER_INCIDENT - 1 else Phase.UPDATE
        camera = f"cam-{incident % CAMERAS}"
        evidence = []
        if evidence_every and i % evidence_every == 0:
            blob = _jpeg(i % 65536)
            sha = hashlib.sha256(blob).hexdigest()
            evidence.append(EvidenceRef(sha256=sha, content_type="image/jpeg", bytes=len(blob)))
            out.append((evidence_topic(SITE, EDGE, sha), blob, False))
        ev = HazardEvent(
            event_id=uuid.uuid4(), incident_key=f"{run}-{incident}", hazard=HazardKind.FIRE_LANE_BLOCKED,
            phase=phase, site=SITE, edge=EDGE, camera=camera, zone=f"zone-{incident}", started_at=t0,
            observed_at=t0 + timedelta(seconds=step), seq=step + 1, score=0.5 + (step % 5) / 10,
            objects=[DetectedObject(label="car", score=0.8, box=(0.1, 0.6, 0.4, 0.9), track_id=step)],
            evidence=evidence, model=ModelRef(name="yolov8n", sha256="0" * 64),
        )
        wire = ev.to_wire_dict()
        wire["observed_at"] = PLACEHOLDER
        out.append((event_topic(SITE, EDGE), json.dumps(wire, separators=(",", ":")).encode(), True))
    return out


def _stamp() -> bytes:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def publisher_main(port: int, events: int, evidence_every: int, rate: float, ready: Any, go: Any, done: Any) -> None:
    """Child process: build the mix, wait for the go signal, publish it (QoS 1) at ``rate`` events/s."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mix = build_mix(events, evidence_every)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    go.wait()
    placeholder = PLACEHOLDER.encode()
    start = time.monotonic()
    sent_events = 0
    infos = []
    for topic, payload, is_event in mix:
        if is_event:
            if rate > 0:
                delay = start + sent_events / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            payload = payload.replace(placeholder, _stamp(), 1)
            sent_events += 1
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    done.set()


# -- consumers ----------------------------------------------------------------------------------------


class _Tally:
    """Per committed event: the latency from its publish stamp; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0
        # Processes the consumer started (their CPU counts as the consumer's).
        self.helper_pids: list[int] = []

    def add(self, observed_at: datetime | None) -> None:
        now = time.monotonic()
        wall = datetime.now(UTC)
        with self.lock:
            self.count += 1
            self.first = self.first if self.first is not None else now
            self.last = now
            if observed_at is not None:
                self.latencies.append((wall - observed_at).total_seconds() * 1000.0)


def _observed(payload: bytes) -> datetime | None:
    at = payload.find(b'"observed_at":"')
    if at < 0:
        return None
    text = payload[at + 15: at + 15 + len(PLACEHOLDER)].decode()
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _paho_consumer(port: int, client_id: str, on_message: Callable[[Any, Any], None]) -> Any:
    """A paho subscriber on a persistent session (it keeps its queue while disconnected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from broker.topics import CENTRAL_SUBSCRIPTIONS

    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, _u, msg: on_message(c, msg)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in CENTRAL_SUBSCRIPTIONS[:2]])
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    if not subscribed.wait(10):
        raise BenchError("bench subscriber could not subscribe")
    return client


def _floor(port: int, tally: _Tally, _workdir: Path, client_id: str) -> Callable[[], dict[str, int]]:
    def on_message(_client: Any, msg: Any) -> None:
        if msg.topic.endswith("/event"):
            tally.add(_observed(msg.payload))

    client = _paho_consumer(port, client_id, on_message)

    def stop() -> dict[str, int]:
        client.disconnect()
        client.loop_stop()
        return {"stored": tally.count, "distinct": tally.count}

    return stop


def _naive_with(journal: str | None) -> Callable[[int, _Tally, Path, str], Callable[[], dict[str, int]]]:
    """The naive subscriber on sqlite3's defaults (rollback journal), or with one journal pragma."""

    def start(port: int, tally: _Tally, workdir: Path, client_id: str) -> Callable[[], dict[str, int]]:
        db = sqlite3.connect(workdir / "naive.db", check_same_thread=False)
        if journal is not None:
            db.execute(f"PRAGMA journal_mode={journal}")
        db.execute("CREATE TABLE IF NOT EXISTS events (event_id TEXT, incident_key TEXT, phase TEXT, "
                   "observed_at TEXT, body TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS blobs (sha TEXT, data BLOB)")
        db.commit()

        def on_message(_client: Any, msg: Any) -> None:
            if msg.topic.endswith("/event"):
                body = json.loads(msg.payload)
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                           (body["event_id"], body["incident_key"], body["phase"], body["observed_at"], msg.payload))
                db.commit()
                tally.add(_observed(msg.payload))
            else:
                db.execute("INSERT INTO blobs VALUES (?, ?)", (msg.topic.rsplit("/", 1)[1], bytes(msg.payload)))
                db.commit()

        client = _paho_consumer(port, client_id, on_message)

        def stop() -> dict[str, int]:
            client.disconnect()
            client.loop_stop()
            stored = db.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
            db.close()
            return {"stored": stored[0], "distinct": stored[1]}

        return stop

    return start


def _central(port: int, tally: _Tally, workdir: Path, client_id: str,
             batch_window_ms: float | None = None) -> Callable[[], dict[str, int]]:
    from sqlalchemy import func, select

    from broker.siteconfig import SiteConfig
    from central.server import build_central
    from central.store.tables import Event

    site = SiteConfig.model_validate({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": port},
        "edges": [{"id": EDGE, "cameras": [{"id": f"cam-{i}", "url": "rtsp://127.0.0.1/x", "grid_cell": "g1"}
                                           for i in range(CAMERAS)]}],
        "grid": [{"code": "g1", "name": "Grid", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "W"}],
    })
    central = build_central(site, f"sqlite:///{workdir / 'central.db'}", workdir / "evidence", workdir / "var",
                            client_id=client_id,
                            batch_window_s=None if batch_window_ms is None else batch_window_ms / 1000)
    assert central.ingest is not None

    def on_outcome(_topic: str, outcome: Any) -> None:
        if outcome.kind in ("event", "duplicate"):
            tally.add(outcome.observed_at)

    central.ingest.on_outcome = on_outcome
    central.start_ingest()
    if not central.ingest.wait_connected(15):
        raise BenchError("central's ingest did not connect to the bench broker")
    receiver = getattr(central.ingest, "_process", None)
    if receiver is not None and receiver.pid is not None:
        tally.helper_pids.append(receiver.pid)

    def stop() -> dict[str, int]:
        central.close()
        from central.store.db import make_engine

        engine = make_engine(f"sqlite:///{workdir / 'central.db'}")
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Event)) or 0
            distinct = conn.scalar(select(func.count(func.distinct(Event.event_id)))) or 0
        engine.dispose()
        return {"stored": stored, "distinct": distinct}

    return stop


# naive: what the issue measured its orientation figure with (sqlite3 as it comes); naive_wal: the
# same subscriber with WAL, a stronger baseline that a user who knows SQLite might write.
CONSUMERS = {"floor": _floor, "naive": _naive_with(None), "naive_wal": _naive_with("WAL"), "central": _central}


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
    consumer = CONSUMERS[name]
    if name == "central":
        consumer = functools.partial(_central, batch_window_ms=opts.batch_window_ms)
    if opts.mode == "backlog":
        # Subscribe once (the session keeps its queue), go offline, let the broker take the whole mix.
        consumer(port, _Tally(), workdir, client_id)()
        progress(f"{name}: publishing {opts.events} events while it is offline")
        go.set()
        if not done.wait(opts.timeout_s):
            raise BenchError("the publisher did not finish")
        progress(f"{name}: connecting to drain the backlog")
    tally = _Tally()
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


def markdown(summary: dict[str, Any]) -> str:
    """The result as the table docs/benchmarks.md shows."""
    c = summary["contestants"]
    names = [n for n in ("central", "naive", "naive_wal", "floor") if n in c]
    titles = {"central": "central", "naive": "naive subscriber", "naive_wal": "naive subscriber, WAL",
              "floor": "bare subscriber (floor)"}
    lines = ["| figure | " + " | ".join(titles[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]

    def cell(name: str, key: str, unit: str = "") -> str:
        v = c.get(name, {}).get(key)
        return "—" if v is None else f"{v:,}{unit}" if isinstance(v, int) else f"{v:,.1f}{unit}"

    for label, key, unit in (("events/s sustained", "events_per_s", ""), ("publish→commit p50", "p50_ms", " ms"),
                             ("publish→commit p99", "p99_ms", " ms"),
                             ("consumer CPU per event", "cpu_us_per_event", " µs"), ("lost", "lost", ""),
                             ("filed twice", "duplicated", "")):
        lines.append(f"| {label} | " + " | ".join(cell(n, key, unit) for n in names) + " |")
    ratios = [f"central ÷ {label}: {summary[key]:.2f}×" for key, label in
              (("central_vs_naive", "naive"), ("central_vs_naive_wal", "naive with WAL"),
               ("central_share_of_floor", "floor")) if summary.get(key) is not None]
    if ratios:
        lines += ["", "; ".join(ratios)]
    return "\n".join(lines)
