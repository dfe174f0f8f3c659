"""A broker that refuses the edge's publishes (MQTT 5 PUBACK "not authorized", 0x87, from a real
Mosquitto whose ACL lacks the edge's topics) loses nothing: every message stays in the outbox or
its dead letters, the publisher says why and how to fix it, and once the ACL is fixed and the
operator re-queues the dead letters every message arrives, in order."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from broker.connectionconfig import BrokerConfig
from broker.mosquitto import MosquittoProcess
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import OutboxPublisher
from tests.support import wait_until

TOPIC = "sharpeyes/v1/acl-site/edge-1/event"
MESSAGES = 6


def _subscriber(broker: MosquittoProcess) -> tuple[mqtt.Client, queue.Queue[bytes]]:
    received: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acl-watcher", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, msg: received.put(msg.payload)
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("sharpeyes/#", qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client, received


def _outbox_cli(path: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "sharpeyes", "edge", "outbox", "--outbox", str(path), "--json", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(120)
def test_refused_publishes_are_kept_reported_and_delivered_after_the_fix(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read sharpeyes/#\n")  # anonymous clients may read, not publish: the edge is refused
    broker = MosquittoProcess(data_dir=tmp_path / "mosquitto", acl_file=acl).start()
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(BrokerConfig(host=broker.host, port=broker.port), "sharpeyes-edge-acl-edge-1", outbox,
                                username="edge-1", max_refusals=3, refusal_backoff_s=0.2)
    watcher, received = _subscriber(broker)
    try:
        outbox.put_many([OutboxMessage(TOPIC, f"event {i}".encode(), "event", None) for i in range(MESSAGES)])
        publisher.start()
        # Refused, reported with the fix, and nothing deleted: each message is pending or buried.
        wait_until(lambda: publisher.last_refusal, 20, what="the refusal to be reported")
        assert "not authorized (0x87): check the ACL for edge-1" in (publisher.last_refusal or "")
        assert not publisher.healthy
        wait_until(lambda: outbox.dead_letter_count() >= 1, 30, what="a message refused 3 times to be buried")
        assert outbox.depth()[0] + outbox.dead_letter_count() == MESSAGES
        assert publisher.published == 0 and received.empty()

        listed = _outbox_cli(tmp_path / "outbox.db", "--dead")
        assert listed["dead_letters"] >= 1
        assert all("check the ACL for edge-1" in d["reason"] and d["attempts"] == 3 for d in listed["dead"])

        # The operator fixes the ACL (Mosquitto re-reads it on SIGHUP) and re-queues the dead letters.
        acl.write_text("topic readwrite sharpeyes/#\n")
        broker.reload()
        time.sleep(0.5)
        requeued = _outbox_cli(tmp_path / "outbox.db", "--retry", "all")
        assert requeued["requeued"] >= 1 and requeued["dead_letters"] == 0
        wait_until(lambda: outbox.depth()[0] == 0 and outbox.dead_letter_count() == 0, 60,
                   what="every message to be delivered")
        assert publisher.healthy and publisher.last_refusal is None
        payloads = set()
        while len(payloads) < MESSAGES:
            payloads.add(received.get(timeout=10).decode())
        assert payloads == {f"event {i}" for i in range(MESSAGES)}
    finally:
        publisher.stop()
        watcher.loop_stop()
        watcher.disconnect()
        outbox.close()
        broker.stop()


@pytest.mark.timeout(60)
def test_without_a_hello_from_central_the_brokers_puback_is_enough(tmp_path: Path, mosquitto) -> None:
    # An older central sends no hello: the edge must not keep acknowledged events for receipts that
    # never come (its outbox would grow without bound).
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(BrokerConfig(host=mosquitto.host, port=mosquitto.port), "sharpeyes-edge-old-central",
                                outbox, username="edge-1")
    try:
        outbox.put_many([OutboxMessage(TOPIC, b"e", "event", "key-1")])
        publisher.start()
        wait_until(lambda: outbox.depth()[0] == 0, 20, what="the PUBACK to remove the event")
        assert not publisher.receipts_active and publisher.published == 1
    finally:
        publisher.stop()
        outbox.close()


@pytest.mark.timeout(60)
def test_a_lapsed_promise_of_receipts_falls_back_to_the_puback(tmp_path: Path, mosquitto) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put_many([OutboxMessage(TOPIC, b"sent before", "event", "key-old")])
    [old] = outbox.peek(1)
    outbox.mark_sent(old.id)  # the broker had it; central's receipt never came
    outbox.set_setting("receipts_until", int(time.time()) - 1)  # central's last hello ran out a second ago
    publisher = OutboxPublisher(BrokerConfig(host=mosquitto.host, port=mosquitto.port), "sharpeyes-edge-lapsed",
                                outbox, username="edge-1")
    try:
        publisher.start()
        wait_until(lambda: outbox.depth()[0] == 0, 20, what="the lapsed promise to release the sent event")
        assert not publisher.receipts_active
    finally:
        publisher.stop()
        outbox.close()
