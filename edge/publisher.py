"""Publishes the outbox to the broker over MQTT, QoS 1, in order, removing each message only
after a PUBACK that accepts it. Status and health are retained and re-sent on every (re)connect.

A PUBACK whose reason code is a failure (MQTT 5, >= 0x80: "not authorized" when the broker's ACL
lacks the edge's topics, "quota exceeded", ...) is a refusal, not a delivery: the message stays,
the publisher reports itself unhealthy with the reason, holds back and resends in order with a
doubling delay; after ``max_refusals`` refusals of one message it moves that message to the
outbox's dead letters, which only an operator re-queues (`sharpeyes edge outbox --retry`).
MQTT 3.1.1 has no reason codes: a broker that drops an unauthorised publish still acknowledges it.

End-to-end receipts: where central's retained hello offers them (``receipts_until`` ahead), a
keyed message (event, evidence) acknowledged by the broker is only marked sent; central's receipt
after its commit removes it, and a sent message without a receipt after ``receipt_timeout_s``
(doubling per resend, at most 32x) is sent again, in order. A broker that crashes before its
autosave, or drops a full queue, costs a resend; central's dedup by event id and sha256 makes the
resend harmless. Without a hello (an older central), or once the promise runs out, the broker's
PUBACK deletes as before, and messages already marked sent are deemed delivered (logged).

Paho's network thread never touches the outbox's disk. A PUBACK or a receipt is noted in memory
there (the window, the cursor, a refusal's hold-back) and its outbox write is queued for the
settling thread, which writes each batch in one transaction. With the writes on paho's thread, a
box that fell behind (64 cameras on 2 cores; one fsync'd DELETE per PUBACK, each waiting for the
outbox's lock and the interpreter) kept that thread from the socket for the broker's 1.5 x
keepalive, and Mosquitto dropped the edge ("exceeded timeout"; the edge read "Unspecified error").
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ValidationError

from broker import topics
from broker.client import configure_client
from broker.connectionconfig import BrokerConfig
from broker.payloads import RECEIPTS_CAPABILITY, CentralHello, Receipt
from edge.outbox import Outbox

log = logging.getLogger(__name__)

# A PUBACK for a mid we have not recorded yet is honoured only this long, so that a late PUBACK
# for an old message cannot acknowledge a new message that reuses its (wrapped-around) mid.
_EARLY_ACK_TTL_S = 5.0
MAX_REFUSALS = 10  # refusals of one message before it becomes a dead letter
REFUSAL_BACKOFF_S = 1.0  # first hold-back after a refusal; doubles per refusal of the same message
REFUSAL_BACKOFF_MAX_S = 60.0
NOT_AUTHORIZED = 0x87
RECEIPT_TIMEOUT_S = 30.0  # a sent message without central's receipt is sent again after this
HELLO_WAIT_S = 2.0  # on connecting without a known hello, wait this long for the retained one
RECEIPTS_SETTING = "receipts_until"  # the outbox remembers central's promise across restarts
M = TypeVar("M", bound=BaseModel)


def refusal_reason(reason_code: object, identity: str) -> str | None:
    """The operator's reading of a PUBACK reason code, or None when it accepts the message."""
    if not getattr(reason_code, "is_failure", False):
        return None
    value = int(getattr(reason_code, "value", 0))
    text = f"{str(reason_code).lower()} (0x{value:02x})"
    if value == NOT_AUTHORIZED:
        return f"{text}: check the ACL for {identity}"
    return f"{text}: the broker refused the publish"


def _from_central(model: type[M], payload: bytes, what: str) -> M | None:
    """A message from central, validated; a malformed one is logged and ignored (it changes nothing)."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        log.warning("ignoring a malformed %s from central: %s", what, exc.errors()[:2])
        return None


def refusal_delay(attempts: int, first_s: float = REFUSAL_BACKOFF_S) -> float:
    return min(REFUSAL_BACKOFF_MAX_S, first_s * 2 ** max(attempts - 1, 0))

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
        max_refusals: int = MAX_REFUSALS,
        refusal_backoff_s: float = REFUSAL_BACKOFF_S,
        receipt_timeout_s: float = RECEIPT_TIMEOUT_S,
    ) -> None:
        self.broker = broker
        self.outbox = outbox
        self.window = window
        self.identity = broker.username or username or client_id
        self.max_refusals = max_refusals
        self.refusal_backoff_s = refusal_backoff_s
        self.receipt_timeout_s = receipt_timeout_s
        promised = outbox.get_setting(RECEIPTS_SETTING)
        self._receipts_until: float | None = float(promised) if promised else None  # unix seconds
        self._keyed: set[int] = set()  # outbox ids in flight that central's receipt will name
        self.receipted = 0
        self.resends = 0
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
        # mid -> (when acknowledged, refusal reason or None), for PUBACKs that beat _drain's bookkeeping
        self._early_acks: dict[int, tuple[float, str | None]] = {}
        self._refusals: dict[int, int] = {}  # outbox id -> refusals so far (this process)
        self._hold_until = 0.0  # after a refusal nothing is sent before this (monotonic)
        self._hello_wait_until = 0.0  # after connecting without a known hello, nothing before this either
        self._rewinds = 0  # bumped when a refusal moves the cursor back: the drain's batch is stale
        self.last_refusal: str | None = None  # cleared by the next accepted message
        self.refused = 0
        self.buried = 0
        self._cursor = 0  # highest outbox id handed to paho in this connection
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="outbox-publisher", daemon=True)
        # Outbox writes noted on paho's thread, written by the settling thread: (outbox id, keep
        # for central's receipt) for an accepted message, (outbox id, reason, refusals) for one to
        # bury, and the keys that central's receipts name.
        self._accepted: deque[tuple[int, bool]] = deque()
        self._to_bury: deque[tuple[int, str, int]] = deque()
        self._receipt_keys: deque[list[str]] = deque()
        self._to_settle = threading.Event()
        self._settle_lock = threading.Lock()  # one writer of a batch at a time: the two threads below
        self._settler = threading.Thread(target=self._settle_loop, name="outbox-settler", daemon=True)
        self.published = 0
        self.disconnects = 0
        self._subscriptions: list[str] = []

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def receipts_active(self) -> bool:
        """True while central has promised receipts: PUBACKed events wait for central's word."""
        return self._receipts_until is not None and time.time() < self._receipts_until

    def on_hello(self, payload: bytes) -> None:
        hello = _from_central(CentralHello, payload, "hello")
        if hello is None:
            return
        offered = RECEIPTS_CAPABILITY in hello.capabilities and hello.receipts_until is not None
        until = hello.receipts_until.timestamp() if offered and hello.receipts_until else None
        if until is not None and self._receipts_until is None:
            log.info("central offers receipts: events stay in the outbox until central has stored them")
        self._receipts_until = until
        self.outbox.set_setting(RECEIPTS_SETTING, int(until or 0))
        with self._lock:
            self._hello_wait_until = 0.0  # the hello is here: no need to wait for it any more

    def on_receipt(self, payload: bytes) -> None:
        receipt = _from_central(Receipt, payload, "receipt")
        if receipt is None:
            return
        self._receipt_keys.append([str(e) for e in receipt.event_ids] + list(receipt.evidence))
        self._to_settle.set()

    def _check_receipts(self) -> None:
        """Resend what central has not receipted in time; fall back to PUBACKs once its promise lapses."""
        if self.receipts_active:
            lowest = self.outbox.due_again(self.receipt_timeout_s)
            if lowest is not None:
                self.resends += 1
                log.info("no receipt from central for outbox message %d and later in time; sending again", lowest)
                with self._lock:
                    self._cursor = min(self._cursor, lowest - 1)
                    self._rewinds += 1
        elif self._receipts_until is not None:
            forgotten = self.outbox.forget_sent()
            log.warning("central's promise of receipts ran out (no hello renewed it): back to the broker's "
                        "acknowledgement; %d message(s) the broker had acknowledged are deemed delivered", forgotten)
            self._receipts_until = None
            self.outbox.set_setting(RECEIPTS_SETTING, 0)

    @property
    def healthy(self) -> bool:
        """False while the broker refuses what the edge publishes (the reason: ``last_refusal``)."""
        return self.last_refusal is None

    def start(self) -> None:
        self._connect_in_background()
        self._client.loop_start()
        self._settler.start()
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

    def follow_central(self, site: str, edge: str, on_command: Callable[[str, bytes], None],
                       *, receipts: bool = True) -> None:
        """Subscribe to this edge's command subtree: central's receipts and hello come to the publisher,
        every other message to ``on_command``. ``receipts=False`` ignores the hello, so the broker's
        PUBACK deletes as before receipts (a control run of `sharpeyes chaos`)."""
        receipt, hello = topics.receipt_topic(site, edge), topics.hello_topic(site, edge)

        def route(topic: str, payload: bytes) -> None:
            if topic == receipt:
                self.on_receipt(payload)
            elif topic == hello:
                if receipts:
                    self.on_hello(payload)
            else:
                on_command(topic, payload)

        self.subscribe(topics.command_subscription(site, edge), route)

    def publish_now(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        """Publish a retained state message directly (its latest value matters, not its history)."""
        if self.connected:
            self._client.publish(topic, payload, qos=1, retain=retain)

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 5.0) -> None:
        """Stop draining; publish ``final`` (the clean ``offline`` status) and disconnect."""
        self._stop.set()
        self._thread.join(timeout)
        self._to_settle.set()
        self._settler.join(timeout)
        self._settle_or_retry()  # what the broker acknowledged up to now is not sent again after a restart
        if final is not None and self.connected:
            info = self._client.publish(final[0], final[1], qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason_code: ReasonCode,
                    properties: Properties | None = None) -> None:
        if reason_code.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason_code)
            return
        log.info("connected to broker %s:%s", self.broker.host, self.broker.port)
        with self._lock:
            self._inflight.clear()
            self._early_acks.clear()
            self._keyed.clear()
            self._cursor = 0  # resend everything still in the outbox, in order
            if self._receipts_until is None:  # let central's retained hello arrive before draining
                self._hello_wait_until = time.monotonic() + HELLO_WAIT_S
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        if self._retained_on_connect is not None:
            for topic, payload in self._retained_on_connect():
                client.publish(topic, payload, qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason_code: ReasonCode,
                       properties: Properties | None = None) -> None:
        if self._connected.is_set():
            self.disconnects += 1
            log.warning("lost the broker (%s); messages stay in the outbox until it is back", reason_code)
        self._connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode | None = None,
                    properties: Properties | None = None) -> None:
        refusal = refusal_reason(reason_code, self.identity)
        with self._lock:
            message_id = self._inflight.pop(mid, None)
            if message_id is None:
                # The PUBACK can beat the bookkeeping in _drain; remember it briefly.
                self._early_acks[mid] = (time.monotonic(), refusal)
        if message_id is not None:
            self._settle(message_id, refusal)

    def _settle(self, message_id: int, refusal: str | None) -> None:
        if refusal is None:
            self._acknowledged(message_id)
        else:
            self._refused(message_id, refusal)

    def _acknowledged(self, message_id: int) -> None:
        with self._lock:
            keyed = message_id in self._keyed
            self._keyed.discard(message_id)
        # central's receipt removes a keyed message; the broker's acknowledgement any other
        self._accepted.append((message_id, keyed and self.receipts_active))
        self._to_settle.set()
        self.published += 1
        self._refusals.pop(message_id, None)
        if self.last_refusal is not None:
            log.info("the broker accepts this edge's messages again")
            self.last_refusal = None

    def _refused(self, message_id: int, reason: str) -> None:
        """Keep the message; hold back and resend it in order, or bury it after max_refusals."""
        attempts = self._refusals.get(message_id, 0) + 1
        self.refused += 1
        self.last_refusal = reason
        if attempts >= self.max_refusals:
            self._refusals.pop(message_id, None)
            self._to_bury.append((message_id, reason, attempts))
            self._to_settle.set()
            return
        self._refusals[message_id] = attempts
        delay = refusal_delay(attempts, self.refusal_backoff_s)
        with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + delay)
            self._cursor = min(self._cursor, message_id - 1)  # resend from it, in order
            self._rewinds += 1
        log.warning("broker refused outbox message %d (%s); kept, resending in %.0f s (refusal %d of %d)",
                    message_id, reason, delay, attempts, self.max_refusals)

    def settle_noted(self) -> None:
        """Write what PUBACKs and receipts have settled so far: one transaction per batch. Where the
        outbox cannot take a write (a full disk), what was not written is kept for the next try:
        the rows stay in the outbox meanwhile, which at worst sends them again."""
        with self._settle_lock:
            accepted: list[tuple[int, bool]] = []
            while self._accepted:
                accepted.append(self._accepted.popleft())
            keys: list[str] = []
            while self._receipt_keys:
                keys.extend(self._receipt_keys.popleft())
            try:
                if accepted:
                    self.outbox.acknowledge(remove=[i for i, keep in accepted if not keep],
                                            mark_sent=[i for i, keep in accepted if keep])
                    accepted = []
                while self._to_bury:
                    message_id, reason, attempts = self._to_bury[0]
                    if self.outbox.bury(message_id, reason, attempts):
                        self.buried += 1
                        log.error("outbox message %d refused %d times (%s); moved to the dead letters: "
                                  "`sharpeyes edge outbox --dead` lists them, `--retry` re-queues them", message_id,
                                  attempts, reason)
                    self._to_bury.popleft()
                if keys:
                    self.receipted += self.outbox.settle(keys)
                    keys = []
            finally:
                self._accepted.extendleft(reversed(accepted))
                if keys:
                    self._receipt_keys.appendleft(keys)

    def _settle_loop(self) -> None:
        while not self._stop.is_set():
            self._to_settle.wait(0.5)
            self._to_settle.clear()
            self._settle_or_retry()

    def _settle_or_retry(self, pause_s: float = 1.0) -> None:
        """settle_noted; where the outbox cannot take the writes just now, log it and pause."""
        try:
            self.settle_noted()
        except sqlite3.Error as exc:
            log.warning("outbox %s: cannot record acknowledged messages yet (%s); retrying", self.outbox.path, exc)
            self._stop.wait(pause_s)

    def _drain(self) -> None:
        checked = 0.0
        while not self._stop.is_set():
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                self._check_receipts()
            if not self._connected.wait(0.2):
                continue
            with self._lock:
                room = self.window - len(self._inflight)
                cursor = self._cursor
                rewinds = self._rewinds
                held = time.monotonic() < max(self._hold_until, self._hello_wait_until)
            if held:
                self._stop.wait(0.05)
                continue
            if room <= 0:
                time.sleep(0.005)
                continue
            # Rows the broker already acknowledged must be gone before the outbox is read again
            # (after a reconnect the cursor starts at 0): otherwise they would go out twice.
            # A failed write leaves the rows behind the cursor: publishing goes on meanwhile.
            self._settle_or_retry(pause_s=0.0)
            batch = self.outbox.peek(room, after_id=cursor)
            if not batch:
                self._rewind_to_requeued(cursor)
                self.outbox.wait_for_messages(cursor, timeout=0.5)
                continue
            for message in batch:
                if not self._connected.is_set():
                    break
                if message.key is not None:
                    with self._lock:
                        self._keyed.add(message.id)
                # Never hold our lock inside paho's publish(): paho calls on_publish while holding
                # its own message lock, and the two orders would deadlock.
                info = self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    log.debug("publish deferred (%s); will retry after reconnect", info.rc)
                    break
                with self._lock:
                    rewound = self._rewinds != rewinds
                    if not rewound:
                        self._cursor = message.id
                    acked = self._early_acks.pop(info.mid, None)
                    early = acked is not None and time.monotonic() - acked[0] < _EARLY_ACK_TTL_S
                    if not early:
                        self._inflight[info.mid] = message.id
                if early and acked is not None:
                    self._settle(message.id, acked[1])
                    rewound = rewound or acked[1] is not None
                if rewound:
                    break  # a refusal moved the cursor back: start again from the refused message

    def _rewind_to_requeued(self, cursor: int) -> None:
        """Messages put back below the cursor (dead letters re-queued by an operator while the edge
        runs) go out at once, not only after the next reconnect."""
        lowest = self.outbox.lowest_id()
        if lowest is None or lowest > cursor:
            return
        with self._lock:
            if lowest not in self._inflight.values() and self._cursor == cursor:
                self._cursor = lowest - 1

    def wait_until_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.depth()[0] == 0:
                return True
            time.sleep(0.05)
        return False

