"""The real parts a fault scenario breaks: Mosquitto, `sharpeyes central serve`, an edge's outbox
publisher in a process of its own, and a TCP proxy between edge and broker that can cut the link.

Everything runs on loopback in a work folder; counting reads the edge's outbox and central's
database directly, so a scenario's figures do not depend on any of the parts telling the truth.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import yaml

from broker.mosquitto import MosquittoProcess
from broker.netutil import free_port
from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
from broker.topics import event_topic, evidence_topic
from edge.outbox import Outbox, OutboxMessage

SITE, EDGE, CAMERA = "chaos", "edge-1", "gate"
T = TypeVar("T")


class ChaosError(RuntimeError):
    """A part did not start or a scenario could not finish: the message says which and why."""


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ChaosError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM (a clean stop), SIGKILL after ``timeout``."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return None


def site_file(folder: Path, broker_port: int) -> Path:
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump({
        "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "edges": [{"id": EDGE, "cameras": [{"id": CAMERA, "url": "rtsp://127.0.0.1:1/none"}]}],
        "users": [{"username": "admin", "role": "admin", "password": "chaos-admin-pw"}],
    }))
    return path


def make_events(n: int, *, snapshot_bytes: int = 0, tag: str = "") -> list[OutboxMessage]:
    """Outbox rows for ``n`` start events of ``n`` incidents (each with a snapshot if asked)."""
    rows: list[OutboxMessage] = []
    now = datetime.now(UTC)
    for i in range(n):
        evidence = []
        if snapshot_bytes:
            blob = b"\xff\xd8\xff\xe0" + f"{tag}{i}".encode() + os.urandom(snapshot_bytes)
            sha = hashlib.sha256(blob).hexdigest()
            evidence.append(EvidenceRef(sha256=sha, content_type="image/jpeg", bytes=len(blob)))
            rows.append(OutboxMessage(evidence_topic(SITE, EDGE, sha), blob, "snapshot", sha))
        event = HazardEvent(
            event_id=uuid.uuid4(), incident_key=f"chaos-{tag}{i}-{uuid.uuid4().hex[:8]}", hazard=HazardKind.FIRE_LANE_BLOCKED,
            phase=Phase.START, site=SITE, edge=EDGE, camera=CAMERA, zone=None, started_at=now, observed_at=now,
            seq=i, score=0.9, objects=[DetectedObject(label="car", score=0.9, box=(0.1, 0.5, 0.3, 0.9))],
            evidence=evidence, model=ModelRef(name="yolov8n", sha256="0" * 64),
        )
        rows.append(OutboxMessage(event_topic(SITE, EDGE), event.to_wire(), "event", str(event.event_id)))
    return rows


@dataclass
class Central:
    """`sharpeyes central serve` on SQLite, started and killed like a deployment's process."""

    folder: Path
    site: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def database(self) -> Path:
        return self.folder / "central.db"

    def start(self, *, ready_timeout: float = 60.0) -> Central:
        self.port = free_port()
        log = open(self.folder / "central.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sharpeyes", "central", "serve", "--config", str(self.site), "--port", str(self.port),
             "--database-url", f"sqlite:///{self.database}", "--evidence-dir", str(self.folder / "evidence"),
             "--mqtt-client-id", "sharpeyes-central-chaos", "--log-level", "warning", "--demo"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True,
        )
        log.close()
        wait_for(self._ready, ready_timeout, "central to be ready (/readyz)", interval=0.3)
        return self

    def _ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise ChaosError(f"central exited; see {self.folder / 'central.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as res:
                return bool(json.loads(res.read())["ready"])
        except OSError:
            return False

    def stop(self) -> None:
        _terminate(self.proc, 20)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the receiving process too, as a crash would
            self.proc.wait()
        self.proc = None

    def counts(self) -> tuple[int, int, int]:
        """(event rows, distinct event ids, incidents filed twice for one incident key)."""
        import sqlite3

        if not self.database.exists():
            return 0, 0, 0
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone()
            (twice,) = db.execute("SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM incidents "
                                  "GROUP BY incident_key HAVING COUNT(*) > 1)").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0, 0, 0
        finally:
            db.close()
        return int(rows), int(distinct), int(twice)


@dataclass
class Edge:
    """An edge's outbox publisher in a process of its own (``sharpeyes.chaos.edge_child``)."""

    folder: Path
    broker_port: int
    receipt_timeout_s: float = 5.0
    max_refusals: int = 10
    refusal_backoff_s: float = 1.0
    receipts: bool = True
    site: str = SITE
    edge: str = EDGE
    proc: subprocess.Popen[bytes] | None = None

    @property
    def outbox_path(self) -> Path:
        return self.folder / "outbox.db"

    def outbox(self, **bounds: int) -> Outbox:
        return Outbox(self.outbox_path, **bounds)

    def start(self) -> Edge:
        log = open(self.folder / "edge.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sharpeyes.chaos.edge_child", "--outbox", str(self.outbox_path),
             "--port", str(self.broker_port), "--site", self.site, "--edge", self.edge,
             "--receipt-timeout", str(self.receipt_timeout_s), "--max-refusals", str(self.max_refusals),
             "--refusal-backoff", str(self.refusal_backoff_s), "--status", str(self.folder / "edge-status.json"),
             *([] if self.receipts else ["--no-receipts"])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    def status(self) -> dict:
        try:
            return json.loads((self.folder / "edge-status.json").read_text())
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        _terminate(self.proc, 15)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Proxy:
    """A TCP relay on loopback between the edge and the broker whose link can be cut and restored:
    a network partition of the test's own making (no root, no firewall rules)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, name="chaos-proxy", daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._cut.is_set():
                client.close()  # the link is down: the edge's connect fails like a dead route
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass


def broker(folder: Path, max_queued_messages: int | None = None) -> MosquittoProcess:
    """Mosquitto from the project's configuration; a small ``max_queued_messages`` only to fill it."""
    if max_queued_messages is None:
        return MosquittoProcess(data_dir=folder / "mosquitto").start()
    return MosquittoProcess(data_dir=folder / "mosquitto", max_queued_messages=max_queued_messages).start()
