"""The MQTT side of the ingest: subscribe, hand each message to IngestService, ack after commit.

Acknowledgement is manual (``manual_ack=True``): a message is acked only once its rows are
committed, so a crash or a database outage before that makes the broker deliver it again (the
session is persistent: clean_start/clean_session off and, on MQTT 5, a session expiry).

The MQTT client runs in a receiving process of its own (``central.ingest.receiver``) so that its
network loop and this process's writer do not take turns on one interpreter lock; it forwards
messages over a pipe and acknowledges what the writer reports committed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from broker.connectionconfig import BrokerConfig
from broker.topics import CENTRAL_SUBSCRIPTIONS
from central.evidence.store import EvidenceBackend, EvidenceStore
from central.fleet.desired_state import retained_desired
from central.ingest.collector import tune_collector
from central.ingest.pipe import (
    Ack,
    ConnectionState,
    Forwarded,
    Generation,
    Publish,
    Published,
    Received,
    Reconnect,
    Stop,
    ToReceiver,
    ToWriter,
)
from central.ingest.receipts import HELLO_RENEW_S, hellos_for, receipts_for
from central.ingest.receiver import SESSION_EXPIRY_S, receiver_main
from central.ingest.service import IngestService
from central.reporting.metrics import CentralMetrics
from central.store.changes import ChangeFeed
from central.workflow.engine import WorkflowEngine
from central.workflow.notify import send_pending, send_pending_commands
from central.workflow.outgoing import Outgoing
from central.workflow.routing import GridRouter

log = logging.getLogger(__name__)

# After a database failure the connection is dropped so the broker re-delivers; wait this long first.
DB_RETRY_S = 5.0
# Messages stored per transaction at most; a burst is committed in batches, a trickle one by one.
BATCH_MAX = 500
# Group commit bounded by latency: the writer commits when BATCH_MAX messages are in hand or when
# the oldest of them was received this long ago, whichever comes first. A few milliseconds turn a
# steady trickle into batches of several messages (a commit each instead of one per message),
# while a burst fills batches at once and never waits.
BATCH_WINDOW_S = 0.01
# How often the writer looks for tasks and commands not yet published.
PENDING_SWEEP_S = 2.0
# How long a notification waits for the receiving process to take it.
PUBLISH_TIMEOUT_S = 5.0
# A receiving process that died on its own is started again after this long.
RESTART_S = 1.0


@dataclass
class IngestDeps:
    sessions: sessionmaker[Session]
    evidence: EvidenceBackend
    router: GridRouter
    feed: ChangeFeed
    workflow: WorkflowEngine | None = None
    # (site, edge ids): each edge gets a retained hello offering receipts (central.ingest.receipts).
    hello_edges: tuple[str, tuple[str, ...]] | None = None
    metrics: CentralMetrics | None = None


class Outlet(Protocol):
    """Where task notifications and commands go when not on the ingest's own connection: every core
    broker the process is connected to (``central.ingest.worker.FanOut``). ``lock`` keeps the
    process's ingests from sweeping the pending rows at the same time."""

    lock: threading.Lock

    def publish(self, topic: str, payload: bytes, qos: int) -> bool: ...

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]: ...


class MqttIngest:
    def __init__(self, broker: BrokerConfig, deps: IngestDeps, client_id: str, shared_group: str | None = None,
                 batch_window_s: float = BATCH_WINDOW_S, *, session_expiry_s: int = SESSION_EXPIRY_S,
                 fenced: bool = False, outlet: Outlet | None = None) -> None:
        self.broker = broker
        # 0: a short session, gone with the connection (its unacknowledged messages with it).
        self.session_expiry_s = session_expiry_s
        # Fenced: the receiving process stays off the broker past a deadline that hold_until moves
        # forward (the client id's lease, renewed: central.ingest.worker). 0.0: not yet held.
        self._fence: Any = multiprocessing.get_context("spawn").Value("d", 0.0) if fenced else None
        # Task notifications and commands go out through the outlet when there is one (every core
        # broker); retained hellos, desired configurations and receipts on this ingest's connection.
        self.outlet = outlet
        self.batch_window_s = batch_window_s
        # With a group, several central workers share the load: the broker gives each message
        # to one member of ``$share/<group>/...`` (MQTT 5 shared subscriptions).
        self.shared_group = shared_group
        self.deps = deps
        self.client_id = client_id
        self._connected = threading.Event()
        self._stop = threading.Event()
        self.retry_delay_s = DB_RETRY_S
        self.on_outcome: Callable[[str, object], None] | None = None  # tests observe outcomes here
        # The pipe reader only queues; one writer thread stores and acknowledges in order. Each
        # message carries the connection it came on: after a reconnect, older ones are dropped
        # (the broker sends them again on the new connection).
        self._inbox: queue.Queue[list[Received]] = queue.Queue()
        self._generation: Generation | None = None
        self._conn: Any = None
        self._process: Any = None
        self._send_lock = threading.Lock()
        self._requests = itertools.count(1)
        # request -> (done, [the receiving process's list of per-message results])
        self._replies: dict[int, tuple[threading.Event, list[list[bool]]]] = {}
        self._sweep = threading.Event()
        self._hello_sent_at: float | None = None  # monotonic; None: due at the next connection
        self._desired_due = True  # each edge's retained configuration, again at every connection
        self._backlog = 0  # messages received and not yet committed (or dropped with their connection)
        self._backlog_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._notifier: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backlog(self) -> int:
        """Messages received from the broker and not yet committed: how far the writer is behind."""
        return self._backlog

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def address(self) -> str:
        return f"{self.broker.host}:{self.broker.port}"

    def hold_until(self, deadline: float) -> None:
        """Let the receiving process stay on the broker until ``deadline`` (time.monotonic(), which
        is the same clock in every process of the host); only for a fenced ingest."""
        if self._fence is None:
            raise ValueError("hold_until is for an ingest built with fenced=True")
        self._fence.value = deadline

    def subscriptions(self) -> list[str]:
        if self.shared_group is None:
            return list(CENTRAL_SUBSCRIPTIONS)
        return [f"$share/{self.shared_group}/{topic}" for topic in CENTRAL_SUBSCRIPTIONS]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        tune_collector()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        self._notifier = threading.Thread(target=self._notify_loop, name="ingest-notify", daemon=True)
        self._notifier.start()
        self._reader = threading.Thread(target=self._supervise, name="mqtt-receiver", daemon=True)
        self._reader.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._sweep.set()
        self._send(Stop())
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
        if self._reader is not None:
            self._reader.join(timeout)
        for thread in (self._writer, self._notifier):
            if thread is not None:
                thread.join(timeout)

    def _send(self, message: ToReceiver) -> bool:
        with self._send_lock:
            if self._conn is None:
                return False
            try:
                self._conn.send(message)
                return True
            except (BrokenPipeError, OSError):
                return False

    def _supervise(self) -> None:
        # spawn, not fork: this process has threads (API, scheduler) whose locks a fork would copy.
        context = multiprocessing.get_context("spawn")
        for epoch in itertools.count(1):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=receiver_main, name=f"mqtt-receiver-{self.client_id}", daemon=True,
                args=(theirs, self.broker, self.client_id, self.subscriptions(), epoch, self.retry_delay_s,
                      logging.getLogger().getEffectiveLevel(), self._receiver_evidence_root(),
                      self.session_expiry_s, self._fence))
            process.start()
            theirs.close()
            with self._send_lock:
                self._conn, self._process = ours, process
            if self._stop.is_set():
                self._send(Stop())  # stop() came while this one was starting
            self._read(ours)
            self._connected.clear()
            with self._send_lock:
                self._conn = None
            process.join(1)
            ours.close()
            if self._stop.is_set():
                return
            log.error("the MQTT receiving process ended (exit code %s); starting it again", process.exitcode)
            if self._stop.wait(RESTART_S):
                return

    def _receiver_evidence_root(self) -> str | None:
        # Only a local folder: its blobs can be written by the receiving process and made durable
        # by the writer's one syncfs. Other stores (S3) are written by the writer's pool.
        evidence = self.deps.evidence
        return str(evidence.root) if isinstance(evidence, EvidenceStore) else None

    def _read(self, conn: Any) -> None:
        while True:
            try:
                message: ToWriter = conn.recv()
            except (EOFError, OSError):
                return
            match message:
                case Forwarded(messages):
                    with self._backlog_lock:
                        self._backlog += len(messages)
                    self._inbox.put(messages)
                case ConnectionState(subscribed, generation):
                    self._generation = generation
                    if subscribed:
                        self._connected.set()
                        self._hello_sent_at = None  # the broker may have lost the retained hellos
                        self._desired_due = True  # and the edges' retained configurations
                        self._sweep.set()  # tasks and commands held back while the broker was away
                    else:
                        self._connected.clear()
                case Published(request, results):
                    waiter = self._replies.pop(request, None)
                    if waiter is not None:
                        waiter[1].append(results)
                        waiter[0].set()

    def _notify_loop(self) -> None:
        # Tasks and commands go out from their own thread: each waits for the receiving process to
        # take it, and the writer should not wait with them.
        while not self._stop.is_set():
            self._sweep.wait(PENDING_SWEEP_S)
            self._sweep.clear()
            # Also what another process committed (an API-only `serve --no-ingest`, the scheduler).
            if self.connected and not self._stop.is_set():
                self._send_hellos()
                self._send_desired()
                self._notify_pending()

    def _send_hellos(self) -> None:
        hello = self.deps.hello_edges
        sent_at = self._hello_sent_at
        if hello is None or (sent_at is not None and time.monotonic() - sent_at < HELLO_RENEW_S):
            return
        site, edges = hello
        messages = [Outgoing(topic, payload, 1, retain=True) for topic, payload in hellos_for(site, edges, datetime.now(UTC))]
        if all(self.publish_many(messages)):
            self._hello_sent_at = time.monotonic()
            log.info("offered receipts to %d edge(s)", len(messages))

    def _send_desired(self) -> None:
        """Each edge's desired configuration, retained again: a broker restarted without persistence,
        or killed before its autosave, has lost them, and an edge must find it when it connects."""
        if not self._desired_due or self.deps.hello_edges is None:
            return
        try:
            with self.deps.sessions() as session:
                messages = retained_desired(session, self.deps.hello_edges[0])
        except Exception:  # noqa: BLE001 - the database is away: tried again at the next sweep
            log.exception("could not read the edges' desired configurations")
            return
        if all(self.publish_many(messages)):
            self._desired_due = False
            if messages:
                log.info("desired configuration retained again for %d edge(s)", len(messages))

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch is None:
                continue
            generation = self._generation
            taken = len(batch)
            batch = [item for item in batch if item.generation == generation]
            for start in range(0, len(batch), BATCH_MAX):
                if not self._store(batch[start:start + BATCH_MAX], generation):
                    break
            with self._backlog_lock:
                self._backlog -= taken  # committed, or dropped with a connection that redelivers them

    def _next_batch(self) -> list[Received] | None:
        """The next batch to commit: full (BATCH_MAX), or whatever came until the oldest message had
        waited ``batch_window_s`` since it was received (a backlog never waits)."""
        try:
            batch = list(self._inbox.get(timeout=0.2))
        except queue.Empty:
            return None
        waited = (datetime.now(UTC) - batch[0].received_at).total_seconds()
        deadline = time.monotonic() + self.batch_window_s - waited
        while len(batch) < BATCH_MAX:
            remaining = deadline - time.monotonic()
            try:
                batch.extend(self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store(self, batch: list[Received], generation: Generation | None) -> bool:
        items = [(item.topic, item.payload, item.received_at) for item in batch]
        started = time.perf_counter()
        try:
            with self.deps.sessions() as session:
                outcomes = IngestService(session, self.deps.evidence, self.deps.router, self.deps.workflow).handle_batch(
                    items
                )
        except Exception:  # noqa: BLE001 - a database outage; the messages stay unacknowledged
            log.exception("could not store %d message(s); will get them again after reconnecting", len(batch))
            if self.deps.metrics is not None:
                self.deps.metrics.store_failures.inc()
            self._send(Reconnect(self.retry_delay_s))
            return False
        if self.deps.metrics is not None:
            self.deps.metrics.batch_stored(outcomes, time.perf_counter() - started)
        receipts = receipts_for(((item.topic, item.payload) for item in batch), datetime.now(UTC))
        self._send(Ack(generation, [(item.mid, item.qos) for item in batch],
                       [Outgoing(topic, payload) for topic, payload in receipts]))
        if any(o.incidents_changed for o in outcomes):
            self.deps.feed.bump()
        if any(o.new_task_ids for o in outcomes):
            self._sweep.set()
        if self.on_outcome is not None:
            for item, outcome in zip(batch, outcomes, strict=True):
                self.on_outcome(item.topic, outcome)
        return True

    # -- task notifications ----------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        """Hand a message to the receiving process's client; True when that client queued it."""
        return self.publish_many([Outgoing(topic, payload, qos)])[0]

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        """Hand messages to the receiving process's client in one round trip over the pipe (a
        burst's task notifications would otherwise cost a round trip each); per message, True when
        that client queued it."""
        if not messages:
            return []
        if not self.connected:
            return [False] * len(messages)
        request = next(self._requests)
        done, result = self._replies.setdefault(request, (threading.Event(), []))
        if not self._send(Publish(request, list(messages))) or not done.wait(PUBLISH_TIMEOUT_S):
            self._replies.pop(request, None)
            return [False] * len(messages)
        return list(result[0])

    def notify_pending(self) -> None:
        """Send tasks and commands committed by the API or the scheduler (thread-safe: paho queues)."""
        if self.connected:
            self._notify_pending()

    def _notify_pending(self) -> None:
        publisher = self.outlet or self
        try:
            with self.outlet.lock if self.outlet is not None else contextlib.nullcontext(), \
                    self.deps.sessions() as session:
                sent = send_pending(session, publisher)
                commands = send_pending_commands(session, publisher)
            if sent or commands:
                log.info("sent %d task notification(s), %d command(s)", sent, commands)
        except Exception:  # noqa: BLE001 - retried on the next connection
            log.exception("could not send task notifications")

