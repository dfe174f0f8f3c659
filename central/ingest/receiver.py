"""The receiving half of the MQTT ingest, in a process of its own (started by ``MqttIngest``).

Paho's network loop and the writer's validation and SQL are both Python: in one process they take
turns on one interpreter lock, and through a burst the writer and paho slowed each other down.
Here paho runs alone: it forwards each message (topic, payload, packet id) to the writer over a
pipe and sends the PUBACK only when the writer reports the message committed. When the writer's
process dies (``kill -9``) the pipe closes and this process exits at once, acknowledging nothing
more, so the broker delivers again whatever was not committed.

What crosses the pipe, and why in which types, is in ``pipe.py``.

A fence (``fence``: a shared monotonic deadline the writer's process moves forward each time it
renews the lease of its client id, ``central.ingest.worker``) keeps a process that stopped renewing
off the broker: past the deadline this process disconnects and stays away, even while the
writer's process is stalled and cannot tell it to, so a worker taking the client id over is not
kicked off again by MQTT's session takeover.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from broker.client import configure_client
from broker.connectionconfig import BrokerConfig
from broker.logsetup import setup_logging
from broker.topics import parse_topic
from central.evidence.store import EvidenceBackend, EvidenceStore, store_checked
from central.ingest.burst import client_class
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
from central.workflow.outgoing import Outgoing

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
# How often a fenced receiver checks its deadline.
FENCE_POLL_S = 0.1
# Messages forwarded to the writer in one pipe message at most.
FORWARD_MAX = 500


def receiver_main(conn: Any, broker: BrokerConfig, client_id: str, subscriptions: list[str], epoch: int,
                  retry_delay_s: float, log_level: int, evidence_root: str | None = None,
                  session_expiry_s: int = SESSION_EXPIRY_S, fence: Any = None) -> None:
    setup_logging(log_level)  # the format follows SHARPEYES_LOG_FORMAT, inherited from the writer
    tune_collector()
    store = EvidenceStore(evidence_root) if evidence_root is not None else None
    _Receiver(conn, broker, client_id, subscriptions, epoch, retry_delay_s, store, session_expiry_s, fence).run()


class _Receiver:
    def __init__(self, conn: Any, broker: BrokerConfig, client_id: str, subscriptions: list[str], epoch: int,
                 retry_delay_s: float, evidence: EvidenceBackend | None = None,
                 session_expiry_s: int = SESSION_EXPIRY_S, fence: Any = None) -> None:
        self.conn = conn
        # 0: the broker forgets the session (subscriptions, queued messages) at each disconnect.
        self.session_expiry_s = session_expiry_s
        self.fence = fence  # a multiprocessing Value: the monotonic deadline; None: never fenced
        # With a filesystem evidence store, blobs are checked and written here, off the writer's
        # interpreter lock; the writer gets a StoredBlob and syncs the files before its commit.
        self.evidence = evidence
        self.broker = broker
        self.client_id = client_id
        self.subscriptions = subscriptions
        self.retry_delay_s = retry_delay_s
        self._send_lock = threading.Lock()
        self._arrived = threading.Condition()
        self._pending: list[Received] = []
        # (epoch, connection): the epoch tells this process from an earlier one the writer started.
        self._epoch = epoch
        self._connection = 0
        # One tuple per connection, shared by its messages: the pipe's pickler then writes it once a batch.
        self.generation: Generation = (epoch, 0)
        self._stop = threading.Event()
        self._announced_down = False
        self._subscribe_mid: int | None = None
        v5 = broker.protocol == "5"
        self.client = client_class()(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else session_expiry_s == 0,
            manual_ack=True,
        )
        configure_client(self.client, broker, default_username="central")
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _next_connection(self) -> None:
        self._connection += 1
        self.generation = (self._epoch, self._connection)

    def _send(self, message: ToWriter) -> None:
        with self._send_lock:
            self.conn.send(message)

    def fenced(self) -> bool:
        return self.fence is not None and time.monotonic() >= self.fence.value

    def run(self) -> None:
        threading.Thread(target=self._forward, name="mqtt-forward", daemon=True).start()
        if self.fence is not None:
            threading.Thread(target=self._watch_fence, name="mqtt-fence", daemon=True).start()
        network = threading.Thread(target=self._network, name="mqtt-network", daemon=True)
        network.start()
        while True:
            try:
                message: ToReceiver = self.conn.recv()
            except (EOFError, OSError):
                # The writer is gone: nothing more is acknowledged; the broker keeps the rest.
                os._exit(0)
            match message:
                case Ack(generation, packets, receipts):
                    if generation == self.generation:
                        for mid, qos in packets:
                            self.client.ack(mid, qos)
                    # A receipt that cannot go out now only makes the edge send again (central dedups).
                    for receipt in receipts:
                        self._publish(receipt)
                case Publish(request, messages):
                    self._send(Published(request, [self._publish(m) for m in messages]))
                case Reconnect(delay_s):
                    self.retry_delay_s = delay_s
                    self.client.disconnect()
                case Stop():
                    self._stop.set()
                    self.client.disconnect()
                    network.join(5)
                    return

    def _publish(self, m: Outgoing) -> bool:
        return self.client.is_connected() and \
            self.client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain).rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- network thread ----------------------------------------------------------------------------

    def _network(self) -> None:
        # loop_forever reconnects with backoff by itself; it returns only after disconnect(), which
        # the writer asks for on a database failure so that unacknowledged messages come again.
        while not self._stop.is_set():
            if self.fenced():
                self._stop.wait(FENCE_POLL_S)  # the lease is not renewed: stay away from the broker
                continue
            if self.broker.protocol == "5":
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry_s
                self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s,
                                          clean_start=self.session_expiry_s == 0, properties=props)
            else:
                self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s)
            try:
                self.client.loop_forever(retry_first_connection=True)
            except Exception:  # noqa: BLE001 - the receiver must outlive any one failure
                log.exception("MQTT loop failed; restarting it")
            if self._stop.wait(self.retry_delay_s):
                break

    def _watch_fence(self) -> None:
        """Past the fence's deadline, leave the broker (and ``_network`` does not come back until the
        writer's process renews the lease and moves the deadline)."""
        while not self._stop.wait(FENCE_POLL_S):
            if self.fenced() and self.client.is_connected():
                log.warning("%s: its lease was not renewed in time; leaving %s:%s until it is", self.client_id,
                            self.broker.host, self.broker.port)
                self.client.disconnect()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags, reason_code: ReasonCode,
                    _properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason_code)
            return
        if self.fenced():
            client.disconnect()  # the lease ran out while connecting: nothing is subscribed or acknowledged
            return
        self._next_connection()
        # Before any message of this connection: a persistent session's backlog may come ahead of
        # the SUBACK, and the writer must know its generation to store it.
        self._send(ConnectionState(False, self.generation))
        log.info("MQTT connected to %s:%s as %s", self.broker.host, self.broker.port, self.client_id)
        self._announced_down = False
        result, self._subscribe_mid = client.subscribe([(topic, 1) for topic in self.subscriptions])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("could not subscribe: %s", result)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      _properties: Properties | None) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused central's subscriptions (%s); check its ACL", ", ".join(refused))
        # "Connected" means subscribed: only from here on is nothing an edge publishes missed.
        log.info("MQTT subscribed on %s:%s as %s", self.broker.host, self.broker.port, self.client_id)
        self._send(ConnectionState(True, self.generation))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        if not self._announced_down:
            log.warning("MQTT broker %s:%s unreachable; retrying with backoff", self.broker.host, self.broker.port)
            self._announced_down = True

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags, reason_code: ReasonCode,
                       _properties: Properties | None) -> None:
        self._next_connection()
        self._send(ConnectionState(False, self.generation))
        if not self._stop.is_set() and not self.fenced():
            log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.broker.host, self.broker.port,
                        reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.fence is not None and self.fenced():
            return  # leaving: not acknowledged, the slot's next holder gets it
        item = Received(self.generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), datetime.now(UTC))
        with self._arrived:
            self._pending.append(item)
            if len(self._pending) == 1:
                self._arrived.notify()  # the forwarding thread waits only when nothing is pending

    # -- forwarding thread -------------------------------------------------------------------------

    def _store_blob(self, item: Received) -> Received:
        if self.evidence is None or "/evidence/" not in item.topic or not isinstance(item.payload, bytes):
            return item
        parts = parse_topic(item.topic)
        if parts is None or parts.kind != "evidence" or parts.sha256 is None:
            return item
        try:
            blob = store_checked(self.evidence, parts.sha256, item.payload)
        except OSError:
            log.exception("could not write evidence %s; the writer will try", parts.sha256)
            return item
        # A blob that does not hash to its name goes on as bytes: the writer dead-letters it.
        return item if blob is None else item._replace(payload=blob)

    def _forward(self) -> None:
        # The pipe, not paho's thread, waits when the writer falls behind: paho keeps reading.
        while True:
            with self._arrived:
                while not self._pending:
                    self._arrived.wait()
                taken, self._pending = self._pending[:FORWARD_MAX], self._pending[FORWARD_MAX:]
            if self.evidence is not None:
                taken = [self._store_blob(item) for item in taken]
            try:
                self._send(Forwarded(taken))
            except (BrokenPipeError, OSError):
                os._exit(0)
