"""`sharpeyes broker config` / `broker ca`: what they write, and that a restart keeps queued messages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from typer.testing import CliRunner

from broker import topics
from broker.brokerconf import BrokerConfigError, BrokerLayout, write_broker_config
from broker.ca import create_dev_pki
from broker.credentials import verify_password
from broker.siteconfig import SiteConfig
from sharpeyes.cli import app
from tests.broker.secured import SITE, Client, start_secured_broker

REPO = Path(__file__).resolve().parents[2]


def _settings(conf: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in conf.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            settings.setdefault(key, []).append(value)
    return settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cli_writes_a_locked_configuration(tmp_path: Path) -> None:
    runner = CliRunner()
    certs = runner.invoke(app, ["broker", "ca", "--out", str(tmp_path / "out" / "certs"), "--client", "edge-1"])
    assert certs.exit_code == 0, certs.output
    result = runner.invoke(
        app, ["broker", "config", "--site", str(REPO / "configs" / "demo.yaml"), "--out", str(tmp_path / "out")],
        env={"SHARPEYES_MQTT_PASSWORD_EDGE_1": "edge-one-secret"},
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    settings = _settings(out / "mosquitto.conf")
    assert settings["allow_anonymous"] == ["false"]
    assert settings["listener"] == ["1883 127.0.0.1", "8883 0.0.0.0"]
    assert settings["persistence"] == ["true"]
    assert int(settings["max_queued_messages"][0]) >= 100_000
    assert int(settings["max_queued_bytes"][0]) > 0
    assert settings["cafile"] == [str(out / "certs" / "ca.crt")]
    users = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert set(users) == {"central", "edge-1", "worker.wang-fang", "worker.li-qiang"}
    assert verify_password("edge-one-secret", users["edge-1"])
    assert "edge-1" in result.output and "environment" in result.output
    for private in (out / "passwd", out / "secrets" / "central.password", out / "certs" / "ca.key",
                    out / "certs" / "server.key", out / "certs" / "client-edge-1.key"):
        assert _mode(private) == 0o600, private
    assert _mode(out / "secrets") == 0o700


def test_generated_passwords_are_kept_across_runs(tmp_path: Path) -> None:
    create_dev_pki(tmp_path / "certs")
    first = write_broker_config(SITE, tmp_path, environ={})
    kept = (first.secrets_dir / "edge-a.password").read_text()
    second = write_broker_config(SITE, tmp_path, environ={})
    assert (second.secrets_dir / "edge-a.password").read_text() == kept
    assert second.sources["edge-a"] == "kept"
    hashes = dict(line.split(":", 1) for line in second.password_file.read_text().splitlines())
    assert verify_password(kept.strip(), hashes["edge-a"])
    # An operator's variable wins over the kept file, and becomes the kept password.
    third = write_broker_config(SITE, tmp_path, environ={"SHARPEYES_MQTT_PASSWORD_EDGE_A": "rotated"})
    assert third.sources["edge-a"] == "environment"
    assert (third.secrets_dir / "edge-a.password").read_text().strip() == "rotated"


def test_paths_are_written_as_the_container_sees_them(tmp_path: Path) -> None:
    create_dev_pki(tmp_path / "certs")
    layout = BrokerLayout(mount_root=Path("/mosquitto/config"), data_dir=Path("/mosquitto/data"), log_dest="stdout")
    result = write_broker_config(SITE, tmp_path, layout, environ={})
    settings = _settings(result.conf)
    assert settings["password_file"] == ["/mosquitto/config/passwd"]
    assert settings["acl_file"] == ["/mosquitto/config/acl"]
    assert settings["certfile"] == ["/mosquitto/config/certs/server.crt"]
    assert settings["persistence_location"] == ["/mosquitto/data/"]
    assert settings["log_dest"] == ["stdout"]


def test_missing_certificates_name_the_command_that_makes_them(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="sharpeyes broker ca --out"):
        write_broker_config(SITE, tmp_path, environ={})
    no_tls = write_broker_config(SITE, tmp_path, BrokerLayout(tls_port=None), environ={})
    assert _settings(no_tls.conf)["listener"] == ["1883 127.0.0.1"]


def test_reserved_edge_ids_are_refused(tmp_path: Path) -> None:
    site = SiteConfig.model_validate({"site": "s", "edges": [{"id": "worker"}]})
    with pytest.raises(BrokerConfigError, match="reserved"):
        write_broker_config(site, tmp_path, BrokerLayout(tls_port=None), environ={})


def test_broker_restart_keeps_messages_queued_for_central(tmp_path: Path) -> None:
    broker = start_secured_broker(tmp_path)
    try:
        central = Client(broker.broker_config("central"), "central-durable")
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        central.mqtt.connect("127.0.0.1", broker.tls_port, clean_start=False, properties=props)
        central.mqtt.loop_start()
        assert central.connack.get(timeout=10).value == 0
        central.subscribe(f"$share/central/{topics.CENTRAL_SUBSCRIPTIONS[0]}")
        central.close()
        edge = Client(broker.broker_config("edge-a"), "edge-a")
        assert edge.connect().value == 0
        for n in range(50):
            assert edge.publish(topics.event_topic("test-site", "edge-a"), f"e{n}".encode()).value == 0
        edge.close()
        broker.stop()  # SIGTERM: Mosquitto writes its persistence file
        broker.start()
        again = Client(broker.broker_config("central"), "central-durable")
        again.mqtt.connect("127.0.0.1", broker.tls_port, clean_start=False, properties=props)
        again.mqtt.loop_start()
        assert again.connack.get(timeout=10).value == 0
        got = [again.messages.get(timeout=10)[1] for _ in range(50)]
        assert got == [f"e{n}".encode() for n in range(50)]
        again.close()
    finally:
        broker.stop()


def test_client_certificates_when_the_broker_requires_them(tmp_path: Path) -> None:
    import queue
    import ssl

    broker = start_secured_broker(tmp_path, require_client_certificate=True)
    try:
        without = Client(broker.broker_config("edge-a"), "edge-a-no-cert")
        try:
            without.mqtt.connect("127.0.0.1", broker.tls_port)
            without.mqtt.loop_start()
            # With TLS 1.3 the client learns of a missing certificate only after its handshake
            # "succeeded": the broker then drops the connection and no CONNACK ever comes.
            accepted = without.connack.get(timeout=3).value == 0
        except (ssl.SSLError, OSError, queue.Empty):
            accepted = False
        without.mqtt.loop_stop()
        assert not accepted, "a client without a certificate got in"
        certs = broker.out / "certs"
        config = broker.broker_config("edge-a").model_copy(
            update={"cert_file": str(certs / "client-edge-a.crt"), "key_file": str(certs / "client-edge-a.key")}
        )
        with_cert = Client(config, "edge-a-cert")
        assert with_cert.connect().value == 0
        with_cert.close()
    finally:
        broker.stop()
