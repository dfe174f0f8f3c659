"""The message mix: hazard events (and the evidence blobs some of them name), built and published
by a child process that stamps each event's ``observed_at`` as it sends it."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

SITE, EDGE = "bench", "edge-1"
PLACEHOLDER = "2000-01-01T00:00:00.000000Z"
EVENTS_PER_INCIDENT = 10
CAMERAS = 20
SNAPSHOT_BYTES = 60 * 1024


def _jpeg(seed: int) -> bytes:
    body = os.urandom(SNAPSHOT_BYTES - 8) if seed >= 0 else b""
    return b"\xff\xd8\xff\xe0" + body + b"\xff\xd9" + seed.to_bytes(2, "big", signed=False)[:2]


def build_mix(events: int, evidence_every: int) -> list[tuple[str, bytes, bool]]:
    """(topic, payload with the observed_at placeholder, is_event); blobs precede the event naming them."""
    import hashlib

    from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
    from broker.topics import event_topic, evidence_topic

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[tuple[str, bytes, bool]] = []
    run = uuid.uuid4().hex[:8]
    for i in range(events):
        incident, step = divmod(i, EVENTS_PER_INCIDENT)
        phase = Phase.START if step == 0 else Phase.END if step == EVENTS_PER_INCIDENT - 1 else Phase.UPDATE
        camera = f"cam-{incident % CAMERAS}"
        evidence = []
        if evidence_every and i % evidence_every == 0:
            blob = _jpeg(i % 65536)
            sha = hashlib.sha256(blob).hexdigest()
            evidence.append(EvidenceRef(sha256=sha, content_type="image/jpeg", bytes=len(blob)))
            out.append((evidence_topic(SITE, EDGE, sha), blob, False))
        ev = HazardEvent(
            event_id=uuid.uuid4(), incident_key=f"{run}-{incident}", hazard=HazardKind.FIRE_LANE_BLOCKED,
            phase=phase, site=SITE, edge=EDGE, camera=camera, zone=f"zone-{incident}", started_at=t0,
            observed_at=t0 + timedelta(seconds=step), seq=step + 1, score=0.5 + (step % 5) / 10,
            objects=[DetectedObject(label="car", score=0.8, box=(0.1, 0.6, 0.4, 0.9), track_id=step)],
            evidence=evidence, model=ModelRef(name="yolov8n", sha256="0" * 64),
        )
        wire = ev.to_wire_dict()
        wire["observed_at"] = PLACEHOLDER
        out.append((event_topic(SITE, EDGE), json.dumps(wire, separators=(",", ":")).encode(), True))
    return out


def _stamp() -> bytes:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def publisher_main(port: int, events: int, evidence_every: int, rate: float, ready: Any, go: Any, done: Any) -> None:
    """Child process: build the mix, wait for the go signal, publish it (QoS 1) at ``rate`` events/s."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mix = build_mix(events, evidence_every)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()
    go.wait()
    placeholder = PLACEHOLDER.encode()
    start = time.monotonic()
    sent_events = 0
    infos = []
    for topic, payload, is_event in mix:
        if is_event:
            if rate > 0:
                delay = start + sent_events / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            payload = payload.replace(placeholder, _stamp(), 1)
            sent_events += 1
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    done.set()
