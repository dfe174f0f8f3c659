"""Paho's network thread never waits for the outbox: an edge whose outbox write takes longer than
the broker's keepalive grace keeps its broker connection, and nothing it was told is lost.

`bench edge` at 64 cameras on 2 cores found Mosquitto dropping the edge ("Client ... has exceeded
timeout, disconnecting"; the edge logged "lost the broker (Unspecified error)"): paho's thread was
writing the outbox for every PUBACK and receipt, each write waiting for the outbox's lock and an
fsync on a box that was far behind, and for 45 s it never reached the socket.

The one stand-in: the slow write is caused by holding the outbox's own lock from the test for
longer than the grace, since a disk that stalls on demand cannot be made here. The rest is real:
Mosquitto, paho, the publisher, its SQLite outbox, and central's hello and receipt on the wire.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from broker import topics
from broker.connectionconfig import BrokerConfig
from broker.mosquitto import MosquittoProcess
from broker.payloads import RECEIPTS_CAPABILITY, CentralHello, Receipt
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import OutboxPublisher
from sharpeyes.chaos.parts import wait_for

SITE, EDGE = "site-1", "edge-1"
KEEPALIVE_S = 5  # Mosquitto drops a client it has not heard from for 1.5 x this: 7.5 s
STALL_S = 12.0


def _central(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-central", protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    return client


def test_an_outbox_write_stalled_past_the_keepalive_grace_keeps_the_connection_and_the_receipt(
        fresh_mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    broker = BrokerConfig(host=fresh_mosquitto.host, port=fresh_mosquitto.port, protocol="5", keepalive_s=KEEPALIVE_S)
    central = _central(broker.host, broker.port)
    hello = CentralHello(site=SITE, edge=EDGE, at=datetime.now(UTC), capabilities=[RECEIPTS_CAPABILITY],
                         receipts_until=datetime.now(UTC) + timedelta(minutes=10))
    central.publish(topics.hello_topic(SITE, EDGE), hello.model_dump_json(by_alias=True), qos=1, retain=True).wait_for_publish(5)
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(broker, f"sharpeyes-edge-{SITE}-{EDGE}", outbox)
    publisher.follow_central(SITE, EDGE, on_command=lambda topic, payload: None)
    publisher.start()
    try:
        wait_for(lambda: publisher.receipts_active, 10, "central's hello to reach the edge")
        events = [str(uuid.uuid4()) for _ in range(5)]
        outbox.put_many([OutboxMessage(topics.event_topic(SITE, EDGE), f'{{"id": "{e}"}}'.encode(), "event", e)
                         for e in events])
        # Acknowledged by the broker, kept for central's receipt.
        wait_for(lambda: outbox.awaiting_receipt() == 5, 10, "the broker to acknowledge the 5 events")

        released = threading.Event()

        def stall() -> None:
            with outbox._lock:  # the stand-in for a write stuck on a stalled disk
                released.wait(STALL_S)

        staller = threading.Thread(target=stall)
        staller.start()
        try:
            receipt = Receipt(site=SITE, edge=EDGE, at=datetime.now(UTC), event_ids=[uuid.UUID(e) for e in events])
            central.publish(topics.receipt_topic(SITE, EDGE), receipt.model_dump_json(by_alias=True), qos=1).wait_for_publish(5)
            time.sleep(STALL_S)  # past Mosquitto's 7.5 s: an edge whose paho thread waited here is dropped
        finally:
            released.set()
            staller.join()
        wait_for(lambda: outbox.depth()[0] == 0, 10, "the receipt to remove the 5 events once the outbox is free")
        assert publisher.receipted == 5
        assert publisher.disconnects == 0 and publisher.connected
        assert "exceeded timeout" not in fresh_mosquitto.log_path.read_text()
    finally:
        publisher.stop()
        central.loop_stop()
        central.disconnect()


def test_acknowledgements_the_outbox_cannot_record_yet_are_kept_and_recorded_later(
        fresh_mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    """A write the outbox refuses (here SQLite's own read-only switch, as a full disk refuses)
    loses no acknowledgement and stops neither publishing nor the settling thread."""
    broker = BrokerConfig(host=fresh_mosquitto.host, port=fresh_mosquitto.port, protocol="5")
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(broker, "edge-ro", outbox)
    fresh_mosquitto.stop()
    outbox.put_many([OutboxMessage(topics.event_topic(SITE, EDGE), f"m{i}".encode(), "event", None) for i in range(5)])
    with outbox._lock:
        outbox._db.execute("PRAGMA query_only = ON")
    publisher.start()
    try:
        fresh_mosquitto.start()
        wait_for(lambda: publisher.published == 5, 20, "the broker to acknowledge the 5 messages")
        time.sleep(1.5)  # the settling thread has tried, and failed, at least once
        assert outbox.depth()[0] == 5 and publisher.connected
        with outbox._lock:
            outbox._db.execute("PRAGMA query_only = OFF")
        wait_for(lambda: outbox.depth()[0] == 0, 10, "the kept acknowledgements to be recorded")
    finally:
        publisher.stop()
