"""Valid v1 payloads and a small site for the central tests, built with the contract's own models."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
from broker.siteconfig import SiteConfig, parse_site_config

SITE = "demo"
EDGE = "edge-1"
T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=timezone.utc)


def jpeg_bytes(tag: str) -> bytes:
    """Bytes that start like a JPEG; unique per tag so each has its own sha256."""
    return b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + tag.encode() * 20 + b"\xff\xd9"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event(
    incident_key: str,
    phase: Phase | str = Phase.START,
    *,
    camera: str = "street-north",
    zone: str | None = "kerb-lane",
    hazard: HazardKind = HazardKind.FIRE_LANE_BLOCKED,
    started_at: datetime = T0,
    observed_after_s: float = 0.0,
    seq: int = 1,
    score: float = 0.8,
    snapshot: bytes | None = None,
    edge: str = EDGE,
    site: str = SITE,
) -> HazardEvent:
    evidence = []
    if snapshot is not None:
        evidence.append(EvidenceRef(sha256=sha(snapshot), content_type="image/jpeg", bytes=len(snapshot)))
    return HazardEvent(
        event_id=uuid.uuid4(),
        incident_key=incident_key,
        hazard=hazard,
        phase=Phase(phase),
        site=site,
        edge=edge,
        camera=camera,
        zone=zone,
        started_at=started_at,
        observed_at=started_at + timedelta(seconds=observed_after_s),
        seq=seq,
        score=score,
        objects=[DetectedObject(label="car", score=score, box=(0.1, 0.6, 0.4, 0.9), track_id=7)],
        evidence=evidence,
        model=ModelRef(name="yolov8n", sha256="0" * 64),
    )


def wire(ev: HazardEvent) -> bytes:
    return ev.to_json().encode()


def site_config(broker_port: int = 1883, protocol: str = "5") -> SiteConfig:
    """Two cameras in two grid cells; the second cell has no worker, so its parent's chief takes it."""
    return parse_site_config(
        {
            "site": SITE,
            "broker": {"host": "127.0.0.1", "port": broker_port, "protocol": protocol},
            "edges": [
                {
                    "id": EDGE,
                    "cameras": [
                        {"id": "street-north", "url": "rtsp://127.0.0.1/a", "grid_cell": "g1"},
                        {"id": "elevator-1", "url": "rtsp://127.0.0.1/b", "grid_cell": "g2"},
                        {"id": "lobby", "url": "rtsp://127.0.0.1/c"},
                    ],
                }
            ],
            "grid": [
                {"code": "c1", "name": "Community", "level": "community", "workers": ["zhao-chief"]},
                {"code": "g1", "name": "Grid 1", "parent": "c1", "workers": ["wang-fang", "li-qiang"]},
                {"code": "g2", "name": "Grid 2", "parent": "c1"},
            ],
            "workers": [
                {"id": "wang-fang", "name": "王芳"},
                {"id": "li-qiang", "name": "李强"},
                {"id": "zhao-chief", "name": "赵"},
            ],
            "users": [
                {"username": "admin", "role": "admin", "password": "admin-pw"},
                {"username": "monitor", "role": "monitor", "password": "monitor-pw"},
                {"username": "wang-fang", "role": "grid_worker", "worker": "wang-fang", "password": "wang-pw"},
                {"username": "zhao", "role": "grid_worker", "worker": "zhao-chief", "password": "zhao-pw"},
            ],
        }
    )
