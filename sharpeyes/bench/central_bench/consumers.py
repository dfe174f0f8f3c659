"""The contestants: subscribers that consume the mix from the bench broker and tally each commit."""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sharpeyes.bench.central_bench.mix import CAMERAS, EDGE, PLACEHOLDER, SITE
from sharpeyes.bench.central_bench.options import BenchError, BenchOptions

# The bench consumers' persistent sessions outlive a disconnect by this long (backlog mode).
SESSION_EXPIRY_S = 3600


class Tally:
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


# (port, tally, workdir, client id) -> stop(), which disconnects and counts what the consumer stored.
Consumer = Callable[[int, Tally, Path, str], Callable[[], dict[str, int]]]


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


def _floor(port: int, tally: Tally, _workdir: Path, client_id: str) -> Callable[[], dict[str, int]]:
    def on_message(_client: Any, msg: Any) -> None:
        if msg.topic.endswith("/event"):
            tally.add(_observed(msg.payload))

    client = _paho_consumer(port, client_id, on_message)

    def stop() -> dict[str, int]:
        client.disconnect()
        client.loop_stop()
        return {"stored": tally.count, "distinct": tally.count}

    return stop


def _naive_with(journal: str | None) -> Consumer:
    """The naive subscriber on sqlite3's defaults (rollback journal), or with one journal pragma."""

    def start(port: int, tally: Tally, workdir: Path, client_id: str) -> Callable[[], dict[str, int]]:
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


def _central(port: int, tally: Tally, workdir: Path, client_id: str,
             batch_window_ms: float | None = None, database_url: str | None = None) -> Callable[[], dict[str, int]]:
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
    url = database_url or f"sqlite:///{workdir / 'central.db'}"
    central = build_central(site, url, workdir / "evidence", workdir / "var",
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

        engine = make_engine(url)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Event)) or 0
            distinct = conn.scalar(select(func.count(func.distinct(Event.event_id)))) or 0
        engine.dispose()
        return {"stored": stored, "distinct": distinct}

    return stop


# naive: what the issue measured its orientation figure with (sqlite3 as it comes); naive_wal: the
# same subscriber with WAL, a stronger baseline that a user who knows SQLite might write.
CONSUMERS: dict[str, Consumer] = {"floor": _floor, "naive": _naive_with(None), "naive_wal": _naive_with("WAL"),
                                  "central": _central}


def consumer_for(name: str, opts: BenchOptions, database_url: str | None = None) -> Consumer:
    """The contestant called ``name``, with central's group-commit window from the options and its
    database (default: SQLite in the contestant's folder)."""
    if name == "central":
        return functools.partial(_central, batch_window_ms=opts.batch_window_ms, database_url=database_url)
    return CONSUMERS[name]
