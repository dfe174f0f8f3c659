"""A real Mosquitto started from `sharpeyes broker config` output, and MQTT clients that log in to it."""

from __future__ import annotations

import os
import pwd
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from broker.brokerconf import BrokerConfigResult, BrokerLayout, write_broker_config
from broker.ca import create_dev_pki
from broker.client import configure_client
from broker.connectionconfig import BrokerConfig
from broker.mosquitto import find_mosquitto
from broker.netutil import free_port, wait_for_port
from broker.siteconfig import SiteConfig

SITE = SiteConfig.model_validate({
    "site": "test-site",
    "edges": [{"id": "edge-a"}, {"id": "edge-b"}],
    "workers": [{"id": "w1", "name": "Worker one"}, {"id": "w2", "name": "Worker two"}],
})


@dataclass
class SecuredBroker:
    out: Path
    plain_port: int
    tls_port: int
    result: BrokerConfigResult
    proc: subprocess.Popen[bytes] | None = None

    def password(self, username: str) -> str:
        return (self.result.secrets_dir / f"{username}.password").read_text().strip()

    def broker_config(self, username: str | None, *, tls: bool = True, ca_file: Path | None = None,
                      password: str | None = None) -> BrokerConfig:
        """A client's BrokerConfig; the password goes through a file, as a mounted container secret would."""
        secret = None
        if username is not None:
            secret = self.out / f"client-{username}-{tls}.pw"
            secret.write_text((password if password is not None else self.password(username)) + "\n")
        return BrokerConfig(
            host="127.0.0.1",
            port=self.tls_port if tls else self.plain_port,
            username=username,
            password_file=str(secret) if secret else None,
            tls=tls,
            ca_file=str(ca_file or self.out / "certs" / "ca.crt") if tls else None,
        )

    def log(self) -> str:
        path = self.out / "data" / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> SecuredBroker:
        """Start (or restart, with the same ports, passwords and persistence) from the generated configuration."""
        self.proc = subprocess.Popen(
            [str(find_mosquitto()), "-c", str(self.result.conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        proc = self.proc
        try:
            for port in (self.plain_port, self.tls_port):
                wait_for_port("127.0.0.1", port, 10, still_alive=lambda: proc.poll() is None, what="Mosquitto")
        except Exception:
            self.stop()
            raise RuntimeError(f"Mosquitto did not start from the generated configuration:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_secured_broker(out: Path, site: SiteConfig = SITE, *, require_client_certificate: bool = False) -> SecuredBroker:
    return prepare_secured_broker(out, site, require_client_certificate=require_client_certificate).start()


def prepare_secured_broker(out: Path, site: SiteConfig = SITE, *, require_client_certificate: bool = False,
                           bridges: tuple[str, ...] = ()) -> SecuredBroker:
    """Write the configuration (free loopback ports) without starting the broker."""
    create_dev_pki(out / "certs", clients=["edge-a"])
    plain_port, tls_port = free_port(), free_port()
    # Started as root (CI containers), Mosquitto would switch to the `mosquitto` account, which
    # cannot read a 0600 password file in a private temporary folder.
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    layout = BrokerLayout(plain_port=plain_port, tls_port=tls_port, tls_bind="127.0.0.1", user=user,
                          require_client_certificate=require_client_certificate, bridges=bridges)
    result = write_broker_config(site, out, layout, environ={})
    return SecuredBroker(out, plain_port, tls_port, result)


@dataclass
class Client:
    """A paho MQTT 5 client configured by `configure_client`, recording what it receives."""

    config: BrokerConfig
    client_id: str
    default_username: str | None = None
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    connack: queue.Queue[mqtt.ReasonCode] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[mqtt.ReasonCode]] = field(default_factory=queue.Queue)
    pubacks: dict[int, mqtt.ReasonCode] = field(default_factory=dict)
    puback_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        configure_client(self.mqtt, self.config, default_username=self.default_username)
        self.mqtt.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.mqtt.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.mqtt.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.mqtt.on_publish = self._on_publish

    def _on_publish(self, _c, _u, mid, reason_code, _p) -> None:  # type: ignore[no-untyped-def]
        self.pubacks[mid] = reason_code
        self.puback_event.set()

    def connect(self) -> mqtt.ReasonCode:
        """Connect and return the broker's CONNACK reason code (the loop keeps running)."""
        self.mqtt.connect(self.config.host, self.config.port, keepalive=30)
        self.mqtt.loop_start()
        return self.connack.get(timeout=10)

    def subscribe(self, topic: str) -> list[mqtt.ReasonCode]:
        self.mqtt.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> mqtt.ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.mqtt.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        return self.pubacks.pop(info.mid)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
