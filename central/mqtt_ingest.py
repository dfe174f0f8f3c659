"""The MQTT side of the ingest: subscribe, hand each message to IngestService, ack after commit.

Acknowledgement is manual (``manual_ack=True``): a message is acked only once its rows are
committed, so a crash or a database outage before that makes the broker deliver it again (the
session is persistent: clean_start/clean_session off and, on MQTT 5, a session expiry).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.orm import Session, sessionmaker

from broker.client import configure_client
from broker.siteconfig import BrokerConfig
from broker.topics import CENTRAL_SUBSCRIPTIONS
from central.changes import ChangeFeed
from central.evidence_store import EvidenceStore
from central.ingest import IngestService
from central.engine import WorkflowEngine
from central.notify import send_pending, send_pending_commands
from central.routing import GridRouter
from central.tables import utcnow

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
# After a database failure the connection is dropped so the broker re-delivers; wait this long first.
DB_RETRY_S = 5.0
# Messages stored per transaction at most; a burst is committed in batches, a trickle one by one.
BATCH_MAX = 500
# How often the writer looks for tasks and commands not yet published.
PENDING_SWEEP_S = 2.0


@dataclass
class IngestDeps:
    sessions: sessionmaker[Session]
    evidence: EvidenceStore
    router: GridRouter
    feed: ChangeFeed
    engine: WorkflowEngine | None = None


class MqttIngest:
    def __init__(self, broker: BrokerConfig, deps: IngestDeps, client_id: str, shared_group: str | None = None) -> None:
        self.broker = broker
        # With a group, several central workers share the load: the broker gives each message
        # to one member of ``$share/<group>/...`` (MQTT 5 shared subscriptions).
        self.shared_group = shared_group
        self.deps = deps
        self.client_id = client_id
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._announced_down = False
        self.retry_delay_s = DB_RETRY_S
        self.on_outcome: Callable[[str, object], None] | None = None  # tests observe outcomes here
        v5 = broker.protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        configure_client(self.client, broker, default_username="central")
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subscribe_mid: int | None = None
        # The network thread only queues; one writer thread stores and acknowledges in order.
        # Each message carries the connection it came on: after a reconnect, older ones are not
        # acknowledged (the broker sends them again on the new connection).
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage, object]] = queue.Queue()
        self._generation = 0
        self._writer: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._writer is not None:
            self._writer.join(timeout)

    def _connect_async(self) -> None:
        props = None
        kwargs: dict[str, object] = {}
        if self.broker.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s, **kwargs)

    def _run(self) -> None:
        # loop_forever reconnects with backoff by itself; it returns only after disconnect(), which
        # we call on a database failure so that unacknowledged messages come again.
        while not self._stop.is_set():
            self._connect_async()
            try:
                self.client.loop_forever(retry_first_connection=True)
            except Exception:  # noqa: BLE001 - the ingest thread must outlive any one failure
                log.exception("MQTT loop failed; restarting it")
            self._connected.clear()
            if self._stop.wait(self.retry_delay_s):
                break

    # -- callbacks (run on the network thread) ----------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason_code)
            return
        self._generation += 1
        log.info("MQTT connected to %s:%s as %s", self.broker.host, self.broker.port, self.client_id)
        self._announced_down = False
        result, self._subscribe_mid = client.subscribe([(topic, 1) for topic in self.subscriptions()])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("could not subscribe: %s", result)

    def subscriptions(self) -> list[str]:
        if self.shared_group is None:
            return list(CENTRAL_SUBSCRIPTIONS)
        return [f"$share/{self.shared_group}/{topic}" for topic in CENTRAL_SUBSCRIPTIONS]

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:  # type: ignore[no-untyped-def]
        if mid != self._subscribe_mid:
            return
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused central's subscriptions (%s); check its ACL", ", ".join(refused))
        # "Connected" means subscribed: only from here on is nothing an edge publishes missed.
        self._connected.set()
        self._notify_pending()

    def _on_connect_fail(self, _client, _userdata) -> None:  # type: ignore[no-untyped-def]
        if not self._announced_down:
            log.warning("MQTT broker %s:%s unreachable; retrying with backoff", self.broker.host, self.broker.port)
            self._announced_down = True

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:  # type: ignore[no-untyped-def]
        self._generation += 1
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.broker.host, self.broker.port, reason_code)

    def _on_message(self, _client, _userdata, msg) -> None:  # type: ignore[no-untyped-def]
        self._inbox.put((self._generation, msg, utcnow()))

    def _write_loop(self) -> None:
        last_sweep = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_sweep > PENDING_SWEEP_S:
                # Tasks and commands another process committed (an API-only `serve --no-ingest`,
                # the scheduler) go out from here too.
                last_sweep = time.monotonic()
                if self.connected:
                    self._notify_pending()
            try:
                first = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            generation = self._generation
            batch = [item for item in batch if item[0] == generation]
            if batch:
                self._store(batch, generation)

    def _store(self, batch: list[tuple[int, mqtt.MQTTMessage, object]], generation: int) -> None:
        items = [(msg.topic, bytes(msg.payload), at) for _, msg, at in batch]
        try:
            with self.deps.sessions() as session:
                outcomes = IngestService(session, self.deps.evidence, self.deps.router, self.deps.engine).handle_batch(
                    items  # type: ignore[arg-type]
                )
        except Exception:  # noqa: BLE001 - a database outage; the messages stay unacknowledged
            log.exception("could not store %d message(s); will get them again after reconnecting", len(batch))
            self.client.disconnect()
            return
        if self._generation == generation:
            for _, msg, _ in batch:
                self.client.ack(msg.mid, msg.qos)
        if any(o.incidents_changed for o in outcomes):
            self.deps.feed.bump()
        if any(o.new_task_ids for o in outcomes):
            self._notify_pending()
        if self.on_outcome is not None:
            for (_, msg, _), outcome in zip(batch, outcomes):
                self.on_outcome(msg.topic, outcome)

    # -- task notifications ----------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=qos)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def notify_pending(self) -> None:
        """Send tasks and commands committed by the API or the scheduler (thread-safe: paho queues)."""
        if self.connected:
            self._notify_pending()

    def _notify_pending(self) -> None:
        try:
            with self.deps.sessions() as session:
                sent = send_pending(session, self)
                commands = send_pending_commands(session, self)
            if sent or commands:
                log.info("sent %d task notification(s), %d command(s)", sent, commands)
        except Exception:  # noqa: BLE001 - retried on the next connection
            log.exception("could not send task notifications")

