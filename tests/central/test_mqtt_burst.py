"""The receiving process's paho client: read-ahead socket and burst reads, against a real Mosquitto."""

from __future__ import annotations

import os
import socket
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from central.ingest.burst import READ_BURST, BurstReadingClient, ReadAheadSocket, available, client_class
from tests.support import wait_until


def test_read_ahead_hands_out_exact_slices_and_says_what_is_pending() -> None:
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        wrapped = ReadAheadSocket(ours)
        theirs.sendall(b"\x30\x05hello" + b"\x40\x02ab")
        wait_until(lambda: ours.recv(1, socket.MSG_PEEK), 2, what="bytes on the socket")
        assert wrapped.recv(1) == b"\x30"
        assert wrapped.pending() == 10  # the rest came in the same read
        assert wrapped.recv(1) == b"\x05"
        assert wrapped.recv(5) == b"hello"
        assert wrapped.recv(100) == b"\x40\x02ab"  # a short read, as a socket gives
        assert wrapped.pending() == 0
        with pytest.raises(BlockingIOError):
            wrapped.recv(1)  # nothing buffered and nothing on the socket: paho's "try again"
        assert wrapped.fileno() == ours.fileno()  # select() still waits on the real socket
        theirs.close()
        wait_until(lambda: True, 0.1)
        assert wrapped.recv(1) == b""  # the peer closed
    finally:
        ours.close()


def test_this_paho_has_what_the_burst_client_needs() -> None:
    # Should a paho release rename its internals, central falls back to the plain client; this
    # test says so loudly instead of letting the receiver slow down unnoticed.
    assert available() and client_class() is BurstReadingClient


def _persistent(client_id: str, port: int, manual_ack: bool = False) -> mqtt.Client:
    client = BurstReadingClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                manual_ack=manual_ack)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    return client


def test_a_backlog_larger_than_a_burst_arrives_whole_in_order_and_acked(fresh_mosquitto) -> None:  # type: ignore[no-untyped-def]
    topic = f"test/burst/{uuid.uuid4().hex[:6]}"
    client_id = f"burst-{uuid.uuid4().hex[:6]}"
    # Small messages and 60 KB ones that span read-ahead buffers, more than one burst of them.
    payloads = [os.urandom(61440) if i % 7 == 0 else f"event {i}".encode() for i in range(READ_BURST * 3)]

    subscribed = threading.Event()
    first = _persistent(client_id, fresh_mosquitto.port)
    first.on_subscribe = lambda *_a: subscribed.set()
    first.loop_start()
    first.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    first.disconnect()
    first.loop_stop()

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", fresh_mosquitto.port)
    publisher.loop_start()
    for info in [publisher.publish(topic, p, qos=1) for p in payloads]:
        info.wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()

    got: list[bytes] = []
    drain = _persistent(client_id, fresh_mosquitto.port, manual_ack=True)

    def on_message(client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        client.ack(msg.mid, msg.qos)  # queued before it counts as got: see the wait below
        got.append(msg.payload)

    drain.on_message = on_message
    drain.loop_start()
    try:
        wait_until(lambda: len(got) >= len(payloads), 20, what="the whole backlog")
        assert got == payloads
        assert isinstance(drain.socket(), ReadAheadSocket)
        # The last burst's PUBACKs are queued by on_message and written by the network loop: on a
        # busy machine a disconnect right away could overtake them (the broker would then rightly
        # deliver those messages again).
        wait_until(lambda: not drain.want_write(), 10, what="the last PUBACKs written to the broker")
    finally:
        drain.disconnect()
        drain.loop_stop()

    # The broker must have read the drain's last PUBACKs and its DISCONNECT before the session is
    # taken again: a new connection with the same client id closes the old one, and whatever of it
    # the broker had not read yet (PUBACKs on a busy machine) is gone with it.
    def closed_by_broker() -> bool:
        log = fresh_mosquitto.log_path.read_text()
        return log.count(f"Client {client_id} disconnected.") + log.count(f"Client {client_id} closed its connection.") >= 2

    wait_until(closed_by_broker, 10, what="the broker to close the drain's connection")

    # Everything was acknowledged: the session holds nothing more.
    again: list[bytes] = []
    after = _persistent(client_id, fresh_mosquitto.port)
    after.on_message = lambda _c, _u, msg: again.append(msg.payload)
    after.loop_start()
    try:
        wait_until(after.is_connected, 5, what="reconnected")
        threading.Event().wait(1.0)
        assert again == []
    finally:
        after.disconnect()
        after.loop_stop()
