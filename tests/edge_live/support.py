"""Helpers for live-edge tests: a site with one edge, and a subscriber that records what it publishes."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt

from broker.siteconfig import SiteConfig
from tests.support import wait_until


def one_camera_site(broker_port: int, url: str, **camera: Any) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "t",
            "broker": {"host": "127.0.0.1", "port": broker_port},
            "edges": [{"id": "e1", "cameras": [{"id": "cam", "url": url, **camera}]}],
        }
    )


class Recorder:
    """Subscribes to everything under the site and keeps (topic, decoded JSON) in arrival order."""

    def __init__(self, port: int, pattern: str = "sharpeyes/v1/t/#") -> None:
        self.messages: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"recorder-{id(self)}")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(pattern, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        try:
            body: Any = json.loads(message.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = message.payload
        with self._lock:
            self.messages.append((message.topic, body))

    def events(self, hazard: str | None = None) -> list[dict]:
        with self._lock:
            found = [b for t, b in self.messages if t.endswith("/event")]
        return [e for e in found if hazard is None or e["hazard"] == hazard]

    def health(self) -> list[str]:
        with self._lock:
            return [b["state"] for t, b in self.messages if t.endswith("/health")]

    def blob(self, sha: str) -> bytes | None:
        """The evidence blob published under ``sha``, or None while it has not arrived."""
        with self._lock:
            return next((b for t, b in self.messages if t.endswith(f"/evidence/{sha}")), None)

    def start_and_clip_update(self, hazard: str, timeout: float) -> tuple[dict, dict]:
        """The first ``start`` of ``hazard`` (within ``timeout``), and the update of its episode that
        carries the clip (within 40 s more)."""
        start = wait_until(lambda: [e for e in self.events(hazard) if e["phase"] == "start"], timeout,
                           what=f"{hazard} start")[0]
        update = wait_until(
            lambda: [e for e in self.events(hazard)
                     if e["incident_key"] == start["incident_key"] and e["phase"] == "update"
                     and e["evidence"] and e["evidence"][0]["content_type"] == "video/mp4"], 40, what="clip update")[0]
        return start, update

    def blobs(self) -> list[str]:
        with self._lock:
            return [t.rsplit("/", 1)[1] for t, _ in self.messages if "/evidence/" in t]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
