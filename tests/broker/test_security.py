"""The locked broker: a real Mosquitto started from `sharpeyes broker config`, reached over TLS.

One broker serves the module (accounts: central, edge-a, edge-b, worker.w1, worker.w2); each test
logs in as the devices it needs, with the passwords the generator wrote.
"""

from __future__ import annotations

import queue
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from broker import topics
from broker.ca import create_dev_pki
from broker.client import BrokerClientError, configure_client, tls_context
from broker.connectionconfig import BrokerConfig
from tests.broker.secured import Client, SecuredBroker, start_secured_broker

SITE = "test-site"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    secured = start_secured_broker(tmp_path_factory.mktemp("secured-broker"))
    yield secured
    secured.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def _login(broker: SecuredBroker, clients: list[Client], username: str, client_id: str | None = None) -> Client:
    client = Client(broker.broker_config(username), client_id or username)
    clients.append(client)
    assert client.connect().value == 0, f"{username} could not log in:\n{broker.log()[-2000:]}"
    return client


def _central(broker: SecuredBroker, clients: list[Client]) -> Client:
    central = _login(broker, clients, "central", "central-test")
    for pattern in topics.CENTRAL_SUBSCRIPTIONS:
        central.subscribe(f"$share/central/{pattern}")
    return central


def _drain(q: queue.Queue[tuple[str, bytes]], until_payload: bytes, timeout: float = 10) -> list[tuple[str, bytes]]:
    """Everything received up to and including the message carrying `until_payload`."""
    got: list[tuple[str, bytes]] = []
    while True:
        item = q.get(timeout=timeout)
        got.append(item)
        if item[1] == until_payload:
            return got


def test_edge_event_reaches_central_over_tls(broker: SecuredBroker, clients: list[Client]) -> None:
    central = _central(broker, clients)
    edge = _login(broker, clients, "edge-a")
    assert edge.publish(topics.event_topic(SITE, "edge-a"), b"event-1").value == 0
    blob = "ab" * 32
    assert edge.publish(topics.evidence_topic(SITE, "edge-a", blob), b"jpeg").value == 0
    got = _drain(central.messages, b"jpeg")
    assert got == [(topics.event_topic(SITE, "edge-a"), b"event-1"), (topics.evidence_topic(SITE, "edge-a", blob), b"jpeg")]


def test_edge_cannot_publish_into_another_edges_subtree(broker: SecuredBroker, clients: list[Client]) -> None:
    central = _central(broker, clients)
    edge_a = _login(broker, clients, "edge-a")
    forged = [
        topics.event_topic(SITE, "edge-b"),
        topics.status_topic(SITE, "edge-b"),
        topics.camera_health_topic(SITE, "edge-b", "cam-1"),
        topics.event_topic("other-site", "edge-a"),
        topics.command_topic(SITE, "edge-a", "recheck"),  # an edge cannot even command itself
        topics.worker_task_topic(SITE, "w1"),
    ]
    for topic in forged:
        assert edge_a.publish(topic, b"forged").getName() == "Not authorized", topic
    # A legitimate event published after the forged ones arrives alone: nothing forged got through.
    assert edge_a.publish(topics.event_topic(SITE, "edge-a"), b"marker").value == 0
    assert _drain(central.messages, b"marker") == [(topics.event_topic(SITE, "edge-a"), b"marker")]


def test_edge_reads_only_its_own_commands(broker: SecuredBroker, clients: list[Client]) -> None:
    central = _login(broker, clients, "central", "central-commands")
    edge_a = _login(broker, clients, "edge-a")
    # Mosquitto grants the wildcard subscription but delivers only what the ACL lets edge-a read.
    edge_a.subscribe(f"{topics.ROOT}/{SITE}/+/cmd/+")
    assert central.publish(topics.command_topic(SITE, "edge-b", "recheck"), b"for-b").value == 0
    assert central.publish(topics.command_topic(SITE, "edge-a", "recheck"), b"for-a").value == 0
    assert _drain(edge_a.messages, b"for-a") == [(topics.command_topic(SITE, "edge-a", "recheck"), b"for-a")]
    # Its reply goes back to central.
    central.subscribe(f"{topics.ROOT}/+/+/cmd/+/reply")
    assert edge_a.publish(topics.reply_topic(SITE, "edge-a", "recheck"), b"done").value == 0
    assert _drain(central.messages, b"done") == [(topics.reply_topic(SITE, "edge-a", "recheck"), b"done")]


def test_worker_device_receives_only_its_own_tasks(broker: SecuredBroker, clients: list[Client]) -> None:
    central = _login(broker, clients, "central", "central-tasks")
    worker = _login(broker, clients, "worker.w1")
    worker.subscribe(f"{topics.ROOT}/{SITE}/worker/+/task")
    worker.subscribe(f"{topics.ROOT}/#")
    assert central.publish(topics.worker_task_topic(SITE, "w2"), b"task-w2").value == 0
    assert central.publish(topics.event_topic(SITE, "edge-a"), b"not-for-workers").getName() == "Not authorized"
    assert central.publish(topics.worker_task_topic(SITE, "w1"), b"task-w1").value == 0
    got = _drain(worker.messages, b"task-w1")
    assert {payload for _, payload in got} == {b"task-w1"}
    assert worker.publish(topics.worker_task_topic(SITE, "w2"), b"x").getName() == "Not authorized"


@pytest.mark.parametrize("port", ["tls", "plain"])
def test_wrong_password_and_anonymous_are_refused(broker: SecuredBroker, clients: list[Client], port: str) -> None:
    tls = port == "tls"
    wrong = Client(broker.broker_config("edge-a", tls=tls, password="not-the-password"), "intruder")
    anonymous = Client(broker.broker_config(None, tls=tls), "anonymous")
    swapped = Client(broker.broker_config("edge-a", tls=tls, password=broker.password("edge-b")), "swapped")
    for client in (wrong, anonymous, swapped):
        clients.append(client)
        assert client.connect().getName() in ("Not authorized", "Bad user name or password")
    # The loopback listener is for local tools with credentials, not a way around them.
    assert _login(broker, clients, "central", f"local-{port}") is not None


def test_tls_with_another_ca_is_refused(broker: SecuredBroker, tmp_path: Path) -> None:
    other = create_dev_pki(tmp_path / "other-ca")["ca"].cert
    client = Client(broker.broker_config("edge-a", ca_file=other), "edge-a-wrong-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect()
    client.mqtt.loop_stop()


def _handshake(context: ssl.SSLContext, port: int, server_name: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name):
            pass


def test_tls_insecure_skips_only_the_name_check(broker: SecuredBroker, tmp_path: Path) -> None:
    config = broker.broker_config("edge-a")
    # A name the server certificate does not carry is refused...
    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch"):
        _handshake(tls_context(config), broker.tls_port, "broker.elsewhere.example")
    # ...unless tls_insecure drops the name check,
    insecure = config.model_copy(update={"tls_insecure": True})
    _handshake(tls_context(insecure), broker.tls_port, "broker.elsewhere.example")
    # which still refuses a certificate from an unknown CA.
    other = create_dev_pki(tmp_path / "other-ca")["ca"].cert
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(tls_context(insecure.model_copy(update={"ca_file": str(other)})), broker.tls_port, "localhost")


def test_generated_password_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    from broker.credentials import hash_password, verify_password

    reference = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(reference), "alice", "s3cret:with$signs"], check=True)
    line = reference.read_text().strip()
    user, hashed = line.split(":", 1)
    _, _, iterations, salt, _ = hashed.split("$")
    import base64

    assert hash_password("s3cret:with$signs", salt=base64.b64decode(salt), iterations=int(iterations)) == hashed
    assert verify_password("s3cret:with$signs", hashed)
    assert not verify_password("s3cret", hashed)


def test_missing_password_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARPEYES_TEST_MQTT_PASSWORD", raising=False)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    config = BrokerConfig(password_env="SHARPEYES_TEST_MQTT_PASSWORD")
    with pytest.raises(BrokerClientError, match="export SHARPEYES_TEST_MQTT_PASSWORD="):
        configure_client(client, config, default_username="edge-a")
    with pytest.raises(BrokerClientError, match="ca_file: /nonexistent/ca.crt does not exist"):
        configure_client(client, BrokerConfig(tls=True, ca_file="/nonexistent/ca.crt"))


def test_identity_defaults_to_the_callers_role(broker: SecuredBroker, clients: list[Client], tmp_path: Path) -> None:
    # The site file names no username: each process connects as itself (edge id / central).
    secret = tmp_path / "edge-a.password"
    secret.write_text(broker.password("edge-a") + "\n")
    config = BrokerConfig(host="127.0.0.1", port=broker.tls_port, tls=True, ca_file=str(broker.out / "certs" / "ca.crt"),
                          password_file=str(secret))
    central = _central(broker, clients)
    edge = Client(config, "edge-a-default", default_username="edge-a")
    clients.append(edge)
    assert edge.connect().value == 0
    assert edge.publish(topics.event_topic(SITE, "edge-a"), b"as-edge-a").value == 0
    assert _drain(central.messages, b"as-edge-a") == [(topics.event_topic(SITE, "edge-a"), b"as-edge-a")]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tls": True, "cert_file": "c.pem"}, "cert_file and key_file go together"),
        ({"ca_file": "ca.crt"}, "ca_file is set but tls is false"),
        ({"tls_insecure": True}, "tls_insecure is set but tls is false"),
        ({"password_env": "A", "password_file": "b"}, "either by password_env or by password_file"),
    ],
)
def test_inconsistent_tls_settings_are_refused_at_load(settings: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        BrokerConfig.model_validate(settings)
