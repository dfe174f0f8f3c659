"""The embedded amqtt broker used by the demo when Mosquitto is missing."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from broker.embedded import BANNER, EmbeddedBroker
from broker.netutil import port_accepts


def test_relays_qos1_over_mqtt_311_and_stops(tmp_path) -> None:  # noqa: ANN001
    received: list[bytes] = []
    got = threading.Event()
    with EmbeddedBroker(data_dir=tmp_path) as broker:
        assert broker.protocol == "3.1.1"
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub", protocol=mqtt.MQTTv311)
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_message = lambda c, u, m: (received.append(m.payload), got.set())
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        sub.subscribe("sharpeyes/v1/demo/edge-1/event", qos=1)
        assert subscribed.wait(10)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv311)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        pub.publish("sharpeyes/v1/demo/edge-1/event", b'{"x": 1}', qos=1).wait_for_publish(10)
        assert got.wait(10)
        assert received == [b'{"x": 1}']
        pub.loop_stop()
        sub.loop_stop()
        port = broker.port
    assert not broker.running
    assert not port_accepts("127.0.0.1", port)
    # Nobody may mistake it for a production broker: the banner is in its log.
    assert BANNER in broker.log_path.read_text()
