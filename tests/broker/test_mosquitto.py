"""The project's Mosquitto configuration and process wrapper, against a real Mosquitto."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.mosquitto import MosquittoError, MosquittoProcess, render_mosquitto_conf
from broker.netutil import port_accepts
from tests.support import wait_until


def _conf_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            settings.setdefault(key, []).append(value)
    return settings


def test_config_keeps_qos1_messages_for_slow_subscribers(tmp_path: Path) -> None:
    settings = _conf_settings(render_mosquitto_conf(port=18883, data_dir=tmp_path))
    assert settings["listener"] == ["18883 127.0.0.1"]
    assert settings["persistence"] == ["true"]
    assert settings["persistence_location"] == [f"{tmp_path}/"]
    # Mosquitto's default of 1000 silently drops QoS 1 messages for a subscriber that is behind.
    assert int(settings["max_queued_messages"][0]) >= 100_000
    assert int(settings["max_queued_bytes"][0]) > 0
    assert "max_inflight_messages" in settings
    assert settings["log_dest"] == [f"file {tmp_path / 'mosquitto.log'}"]


def test_config_can_require_passwords_and_acl(tmp_path: Path) -> None:
    text = render_mosquitto_conf(port=1, data_dir=tmp_path, bind="0.0.0.0", allow_anonymous=False,
                                 password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    settings = _conf_settings(text)
    assert settings["allow_anonymous"] == ["false"]
    assert settings["password_file"] == [str(tmp_path / "passwd")]
    assert settings["acl_file"] == [str(tmp_path / "acl")]
    assert settings["listener"] == ["1 0.0.0.0"]


class Collector:
    """A persistent-session MQTT 5 subscriber that records payloads."""

    def __init__(self, broker: MosquittoProcess, client_id: str, topic: str) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.broker = broker

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        with self.lock:
            self.payloads.append(message.payload)

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600  # keep the session (and its queue) while disconnected
        self.client.connect(self.broker.host, self.broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.subscribed.clear()


def _publish(broker: MosquittoProcess, topic: str, payloads: list[bytes]) -> None:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=mqtt.MQTTv5)
    pub.max_queued_messages_set(0)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    infos = [pub.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(timeout=30)
        assert info.is_published()
    pub.disconnect()
    pub.loop_stop()


def test_queued_messages_beyond_mosquitto_default_reach_a_reconnecting_subscriber(fresh_mosquitto: MosquittoProcess) -> None:
    collector = Collector(fresh_mosquitto, "slow-central", "t/queue")
    collector.connect()
    collector.disconnect()
    payloads = [f"m{i}".encode() for i in range(1500)]
    _publish(fresh_mosquitto, "t/queue", payloads)
    collector.connect()
    try:
        wait_until(lambda: len(collector.payloads) >= 1500, 30, what="1500 queued messages")
        time.sleep(0.3)
        assert sorted(collector.payloads) == sorted(payloads)
    finally:
        collector.disconnect()


def test_queued_messages_survive_a_broker_restart(fresh_mosquitto: MosquittoProcess) -> None:
    collector = Collector(fresh_mosquitto, "central-restart", "t/persist")
    collector.connect()
    collector.disconnect()
    _publish(fresh_mosquitto, "t/persist", [b"before-restart-1", b"before-restart-2"])
    port = fresh_mosquitto.port
    fresh_mosquitto.stop()
    assert not port_accepts("127.0.0.1", port)
    fresh_mosquitto.start()
    assert fresh_mosquitto.port == port
    collector.connect()
    try:
        wait_until(lambda: len(collector.payloads) >= 2, 10, what="persisted messages after restart")
        assert collector.payloads == [b"before-restart-1", b"before-restart-2"]
    finally:
        collector.disconnect()


def test_kill_drops_connections_and_start_serves_again_on_the_same_port(fresh_mosquitto: MosquittoProcess) -> None:
    port = fresh_mosquitto.port
    fresh_mosquitto.kill()
    assert not fresh_mosquitto.running
    assert not port_accepts("127.0.0.1", port)
    fresh_mosquitto.start()
    assert fresh_mosquitto.port == port and port_accepts("127.0.0.1", port)


def test_refuses_a_port_someone_else_listens_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = MosquittoProcess(port=port, data_dir=tmp_path)
        with pytest.raises(MosquittoError, match=f"already listens on 127.0.0.1:{port}"):
            broker.start()


def test_start_failure_quotes_the_broker_log(tmp_path: Path) -> None:
    broker = MosquittoProcess(data_dir=tmp_path, allow_anonymous=False, password_file=tmp_path / "missing-passwd")
    with pytest.raises(MosquittoError) as failure:
        broker.start()
    message = str(failure.value)
    assert "exited before it accepted connections" in message
    assert "missing-passwd" in message  # Mosquitto's own complaint, from its log
    assert not broker.running


def test_session_fixture_broker_accepts_mqtt(mosquitto: MosquittoProcess) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    assert client.connect(mosquitto.host, mosquitto.port) == mqtt.MQTT_ERR_SUCCESS
    client.disconnect()
