"""A district broker bridged into a core broker, both real Mosquitto from `sharpeyes broker config`.

The district's bridge section is deploy/city/mosquitto-district-bridge.conf itself, with only the
core's address, CA file and the bridge's password filled in, so the shipped file is what runs.
"""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path

from broker import topics
from tests.broker.secured import Client, SecuredBroker, prepare_secured_broker

REPO = Path(__file__).resolve().parents[2]
BRIDGE_FILE = REPO / "deploy" / "city" / "mosquitto-district-bridge.conf"
SITE = "test-site"


def _bridge_section(core: SecuredBroker) -> str:
    text = BRIDGE_FILE.read_text()
    text = re.sub(r"^address .*$", f"address 127.0.0.1:{core.tls_port}", text, flags=re.MULTILINE)
    text = re.sub(r"^bridge_cafile .*$", f"bridge_cafile {core.out / 'certs' / 'ca.crt'}", text, flags=re.MULTILINE)
    password = core.password("bridge.district-07")
    return text.replace("${BRIDGE_PASSWORD}", password)


def _wait_for_log(broker: SecuredBroker, needle: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while needle not in broker.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in the log:\n{broker.log()[-3000:]}")
        time.sleep(0.1)


def test_district_bridge_carries_events_up_and_commands_down(tmp_path: Path) -> None:
    core = prepare_secured_broker(tmp_path / "core", bridges=("district-07",)).start()
    district = prepare_secured_broker(tmp_path / "district")
    with district.result.conf.open("a") as conf:
        conf.write("\n" + _bridge_section(core))
    district.start()
    opened: list[Client] = []
    try:
        _wait_for_log(core, "as bridge-district-07")
        central = Client(core.broker_config("central"), "central-core")
        opened.append(central)
        assert central.connect().value == 0
        central.subscribe(f"$share/central/{topics.CENTRAL_SUBSCRIPTIONS[0]}")
        edge = Client(district.broker_config("edge-a"), "edge-a")
        opened.append(edge)
        assert edge.connect().value == 0
        edge.subscribe(topics.command_subscription(SITE, "edge-a"))

        # Up: an event published in the district reaches central on the core.
        assert edge.publish(topics.event_topic(SITE, "edge-a"), b"from-district").value == 0
        assert central.messages.get(timeout=10) == (topics.event_topic(SITE, "edge-a"), b"from-district")

        # Down: a command central publishes on the core reaches the edge in its district. The
        # bridge subscribes on the core right after connecting; repeat until that has happened.
        command = topics.command_topic(SITE, "edge-a", "recheck")
        deadline = time.monotonic() + 10
        while True:
            assert central.publish(command, b"recheck").value == 0
            try:
                assert edge.messages.get(timeout=0.5) == (command, b"recheck")
                break
            except queue.Empty:
                assert time.monotonic() < deadline, f"no command came down the bridge:\n{district.log()[-2000:]}"
    finally:
        for client in opened:
            client.close()
        district.stop()
        core.stop()
