"""The retained desired configuration on the locked broker (a real Mosquitto from `sharpeyes broker
config`): each edge reads its own and no other's, cannot overwrite it, and it survives a broker
restart (persistence), so an edge connecting afterwards still finds it without central."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import topics
from tests.broker.secured import Client, SecuredBroker, start_secured_broker

SITE = "test-site"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecuredBroker]:
    secured = start_secured_broker(tmp_path / "secured-broker")
    yield secured
    secured.stop()


def _login(broker: SecuredBroker, opened: list[Client], username: str, client_id: str) -> Client:
    client = Client(broker.broker_config(username), client_id)
    opened.append(client)
    assert client.connect().value == 0, broker.log()[-2000:]
    return client


def _retain(central: Client, topic: str, payload: bytes) -> None:
    info = central.mqtt.publish(topic, payload, qos=1, retain=True)
    info.wait_for_publish(10)
    assert not central.pubacks.pop(info.mid).is_failure, topic  # "no matching subscribers" is a success


def _received_until(client: Client, marker: bytes) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    while (item := client.messages.get(timeout=10))[1] != marker:
        got.append(item)
    return got


def test_each_edge_finds_its_own_desired_configuration_and_only_that(broker: SecuredBroker) -> None:
    opened: list[Client] = []
    try:
        central = _login(broker, opened, "central", "central-desired")
        _retain(central, topics.config_topic(SITE, "edge-a"), b"desired-a")
        _retain(central, topics.config_topic(SITE, "edge-b"), b"desired-b")

        edge_a = _login(broker, opened, "edge-a", "edge-a-desired")
        # An edge may not write its own desired state, retained or not.
        info = edge_a.mqtt.publish(topics.config_topic(SITE, "edge-a"), b"forged", qos=1, retain=True)
        info.wait_for_publish(10)
        assert edge_a.pubacks.pop(info.mid).getName() == "Not authorized"

        broker.stop()  # SIGTERM: Mosquitto saves its retained messages (persistence on)
        broker.start()
        for client in opened:
            client.close()
        opened.clear()
        central = _login(broker, opened, "central", "central-desired-2")
        edge_a = _login(broker, opened, "edge-a", "edge-a-desired-2")
        # Mosquitto grants the site-wide subscription but delivers only what the ACL lets edge-a read.
        edge_a.subscribe(f"{topics.ROOT}/{SITE}/+/cmd/+")
        assert not central.publish(topics.command_topic(SITE, "edge-a", "recheck"), b"marker").is_failure
        assert _received_until(edge_a, b"marker") == [(topics.config_topic(SITE, "edge-a"), b"desired-a")]
        with pytest.raises(queue.Empty):
            edge_a.messages.get(timeout=0.5)
    finally:
        for client in opened:
            client.close()
