"""Clear the edges' retained configurations from a broker the whole run shares.

Central keeps each edge's desired configuration retained on ``.../cmd/config`` (central/fleet/
desired_state.py): on the session's one Mosquitto, a test's configuration would otherwise reach the
next test's edge of the same site and id when it subscribes."""

from __future__ import annotations

import threading
import uuid

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CONFIGS = "sharpeyes/v1/+/+/cmd/config"


def clear_retained_configs(host: str, port: int, timeout: float = 5.0) -> list[str]:
    """Empty every retained config command on the broker; the topics cleared."""
    marker = f"tests/retained/{uuid.uuid4().hex}"
    found: list[str] = []
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == marker:
            done.set()  # the broker sent the retained messages while taking the SUBSCRIBE, before this
        elif message.retain and message.payload:
            found.append(message.topic)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    try:
        client.connect(host, port)
    except OSError:
        return []  # the broker is down (a test stopped it): nothing to clear now
    client.loop_start()
    try:
        client.subscribe([(CONFIGS, 1), (marker, 1)])
        for _ in range(int(timeout / 0.05)):
            client.publish(marker, b"1", qos=1)
            if done.wait(0.05):
                break
        for topic in found:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout)
    finally:
        client.loop_stop()
        client.disconnect()
    return found
