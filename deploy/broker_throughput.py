"""Measure one locked Mosquitto node: events/s through TLS, passwords and the ACL, and its CPU cost.

    .venv/bin/python deploy/broker_throughput.py [--events 20000] [--bytes 1500] [--publishers 4]

Starts a broker from `sharpeyes broker config` output on loopback (TLS listener, ACL, persistence,
the project's queue limits), has N edges publish hazard-event-sized QoS 1 messages to their own
event topics and one central subscriber receive them on the shared subscription, then prints
events/s end to end and the broker's CPU seconds per 10,000 events (from /proc), the figure the
sizing in docs/deployment.md divides by. The clients are Python (paho) on the same machine, so the
rate is a floor for the broker; the CPU cost per event is the broker's own.
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from broker import topics
from broker.brokerconf import BrokerLayout, write_broker_config
from broker.ca import create_dev_pki
from broker.client import configure_client
from broker.connectionconfig import BrokerConfig
from broker.mosquitto import find_mosquitto
from broker.netutil import free_port, wait_for_port
from broker.siteconfig import SiteConfig

SITE = "bench"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(out: Path, port: int, username: str, client_id: str) -> mqtt.Client:
    secret = out / "secrets" / f"{username}.password"
    config = BrokerConfig(host="127.0.0.1", port=port, tls=True, ca_file=str(out / "certs" / "ca.crt"),
                          username=username, password_file=str(secret))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    configure_client(client, config)
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bytes", type=int, default=1500, help="payload size (a hazard event is ~1-2 KB)")
    parser.add_argument("--publishers", type=int, default=4)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="sharpeyes-broker-bench-"))
    edges = [f"edge-{i}" for i in range(args.publishers)]
    site = SiteConfig.model_validate({"site": SITE, "edges": [{"id": e} for e in edges]})
    create_dev_pki(out / "certs")
    tls_port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    write_broker_config(site, out, BrokerLayout(plain_port=free_port(), tls_port=tls_port, tls_bind="127.0.0.1", user=user),
                        environ={})
    proc = subprocess.Popen([str(find_mosquitto()), "-c", str(out / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", tls_port, 10, what="Mosquitto")
        received = 0
        done = threading.Event()
        subscribed = threading.Event()

        def on_message(_c, _u, _m) -> None:  # type: ignore[no-untyped-def]
            nonlocal received
            received += 1
            if received >= args.events:
                done.set()

        central = _client(out, tls_port, "central", "central-bench")
        central.on_message = on_message
        central.on_subscribe = lambda *a: subscribed.set()
        central.connect("127.0.0.1", tls_port)
        central.loop_start()
        central.subscribe(f"$share/central/{topics.CENTRAL_SUBSCRIPTIONS[0]}", qos=1)
        assert subscribed.wait(10)
        payload = b"x" * args.bytes
        per_edge = args.events // len(edges)
        publishers = []
        for edge in edges:
            client = _client(out, tls_port, edge, edge)
            client.connect("127.0.0.1", tls_port)
            client.loop_start()
            publishers.append((client, topics.event_topic(SITE, edge)))
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()

        def publish(client: mqtt.Client, topic: str) -> None:
            for _ in range(per_edge):
                client.publish(topic, payload, qos=1)

        threads = [threading.Thread(target=publish, args=p) for p in publishers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = per_edge * len(edges)
        args.events = total
        if not done.wait(600):
            raise SystemExit(f"only {received} of {total} events arrived")
        elapsed, cpu = time.monotonic() - t0, _cpu_seconds(proc.pid) - cpu0
        print(f"{total} events of {args.bytes} B from {len(edges)} edges over TLS+ACL, QoS 1: "
              f"{total / elapsed:,.0f} events/s end to end; broker CPU {cpu:.2f} s "
              f"= {cpu / total * 10_000:.2f} CPU-s per 10,000 events (~{total / cpu:,.0f} events/s per core)")
        for client, _ in publishers:
            client.disconnect()
        central.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
