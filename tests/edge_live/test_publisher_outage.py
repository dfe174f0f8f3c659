"""Events written while the broker is down reach a subscriber after it returns: none lost, in order."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from broker.connectionconfig import BrokerConfig
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import OutboxPublisher


class Collector:
    """A persistent-session QoS 1 subscriber, as central is."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-collector", protocol=mqtt.MQTTv311, clean_session=False
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.received.append(message.payload)

    def wait_for(self, count: int, timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(set(self.received)) >= count:
                    break
            time.sleep(0.05)
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _first_occurrences(messages: list[bytes]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for m in messages:
        seen.setdefault(m, None)
    return list(seen)


def test_broker_outage_loses_nothing_and_keeps_order(fresh_mosquitto, tmp_path):
    broker = BrokerConfig(host=fresh_mosquitto.host, port=fresh_mosquitto.port, protocol="5")
    collector = Collector(broker.host, broker.port, "sharpeyes/v1/t/e/event")
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(broker, "test-edge", outbox)
    publisher.start()
    try:
        # Every fifth message is snapshot-sized: large payloads once exposed a lock-order deadlock.
        expected = [f"event-{i}-".encode() + (b"x" * 250_000 if i % 5 == 0 else b"") for i in range(60)]
        outbox.put_many([OutboxMessage("sharpeyes/v1/t/e/event", m, "event", None) for m in expected[:20]])
        assert publisher.wait_until_drained(10), "first batch was not acknowledged"

        fresh_mosquitto.stop()
        outbox.put_many([OutboxMessage("sharpeyes/v1/t/e/event", m, "event", None) for m in expected[20:]])
        time.sleep(1.0)
        assert outbox.depth()[0] == 40, "messages must wait in the outbox while the broker is down"

        fresh_mosquitto.start()
        assert publisher.wait_until_drained(30), "outbox did not drain after the broker came back"
        received = collector.wait_for(len(expected), timeout=15)
        assert _first_occurrences(received) == expected
    finally:
        publisher.stop()
        collector.close()
