"""Publishes the outbox to the broker over MQTT, QoS 1, in order, removing each message only
after its PUBACK. Status and health are retained and re-sent on every (re)connect."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from broker.client import configure_client
from broker.siteconfig import BrokerConfig
from edge.outbox import Outbox

log = logging.getLogger("sharpeyes.edge.publisher")

# A PUBACK for a mid we have not recorded yet is honoured only this long, so that a late PUBACK
# for an old message cannot acknowledge a new message that reuses its (wrapped-around) mid.
_EARLY_ACK_TTL_S = 5.0

RetainedMessages = Callable[[], list[tuple[str, bytes]]]


def make_client(broker: BrokerConfig, client_id: str, *, clean: bool, username: str | None = None) -> mqtt.Client:
    """A paho client for the configured protocol version, with the site's credentials and TLS.

    ``username`` is this device's identity when the configuration names none (an edge's id: the
    broker's ACL confines each edge to its own subtree by it)."""
    if broker.protocol == "5":
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean
        )
    configure_client(client, broker, default_username=username)
    return client


class OutboxPublisher:
    """Drains an Outbox to MQTT. Keeps at most ``window`` messages in flight, in id order."""

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        outbox: Outbox,
        *,
        will: tuple[str, bytes] | None = None,
        retained_on_connect: RetainedMessages | None = None,
        window: int = 32,
        username: str | None = None,
    ) -> None:
        self.broker = broker
        self.outbox = outbox
        self.window = window
        self._retained_on_connect = retained_on_connect
        self._client = make_client(broker, client_id, clean=True, username=username)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # mqtt mid -> outbox id
        self._early_acks: dict[int, float] = {}  # mid -> when acknowledged, before _drain recorded it
        self._cursor = 0  # highest outbox id handed to paho in this connection
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="outbox-publisher", daemon=True)
        self.published = 0
        self.disconnects = 0
        self._subscriptions: list[str] = []

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._connect_in_background()
        self._client.loop_start()
        self._thread.start()

    def _connect_in_background(self) -> None:
        # connect_async never raises for a dead broker; paho's loop keeps retrying with its backoff.
        if self.broker.protocol == "5":
            self._client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s, clean_start=True)
        else:
            self._client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s)

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """Subscribe (QoS 1) on every connect; ``callback(topic, payload)`` runs on paho's thread."""
        self._subscriptions.append(topic)
        self._client.message_callback_add(topic, lambda client, userdata, msg: callback(msg.topic, bytes(msg.payload)))

    def publish_now(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        """Publish a retained state message directly (its latest value matters, not its history)."""
        if self.connected:
            self._client.publish(topic, payload, qos=1, retain=retain)

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 5.0) -> None:
        """Stop draining; publish ``final`` (the clean ``offline`` status) and disconnect."""
        self._stop.set()
        self._thread.join(timeout)
        if final is not None and self.connected:
            info = self._client.publish(final[0], final[1], qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason_code)
            return
        log.info("connected to broker %s:%s", self.broker.host, self.broker.port)
        with self._lock:
            self._inflight.clear()
            self._early_acks.clear()
            self._cursor = 0  # resend everything still in the outbox, in order
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        if self._retained_on_connect is not None:
            for topic, payload in self._retained_on_connect():
                client.publish(topic, payload, qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if self._connected.is_set():
            self.disconnects += 1
            log.warning("lost the broker (%s); messages stay in the outbox until it is back", reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        with self._lock:
            message_id = self._inflight.pop(mid, None)
            if message_id is None:
                # The PUBACK can beat the bookkeeping in _drain; remember it briefly.
                self._early_acks[mid] = time.monotonic()
        if message_id is not None:
            self._acknowledged(message_id)

    def _acknowledged(self, message_id: int) -> None:
        self.outbox.remove(message_id)
        self.published += 1

    def _drain(self) -> None:
        while not self._stop.is_set():
            if not self._connected.wait(0.2):
                continue
            with self._lock:
                room = self.window - len(self._inflight)
                cursor = self._cursor
            if room <= 0:
                time.sleep(0.005)
                continue
            batch = self.outbox.peek(room, after_id=cursor)
            if not batch:
                self.outbox.wait_for_messages(cursor, timeout=0.5)
                continue
            for message in batch:
                if not self._connected.is_set():
                    break
                # Never hold our lock inside paho's publish(): paho calls on_publish while holding
                # its own message lock, and the two orders would deadlock.
                info = self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    log.debug("publish deferred (%s); will retry after reconnect", info.rc)
                    break
                with self._lock:
                    self._cursor = message.id
                    acked_at = self._early_acks.pop(info.mid, None)
                    early = acked_at is not None and time.monotonic() - acked_at < _EARLY_ACK_TTL_S
                    if not early:
                        self._inflight[info.mid] = message.id
                if early:
                    self._acknowledged(message.id)

    def wait_until_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.depth()[0] == 0:
                return True
            time.sleep(0.05)
        return False

