"""Valid v1 payloads and a small site for the central tests, built with the contract's own models."""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
from broker.siteconfig import SiteConfig, parse_site_config

SITE = "demo"
EDGE = "edge-1"
T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


@functools.cache
def jpeg_bytes(tag: str) -> bytes:
    """A real, small JPEG (redaction decodes it), unique per tag so each has its own sha256."""
    import io

    from PIL import Image

    seed = int.from_bytes(hashlib.sha256(tag.encode()).digest()[:4], "big")
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


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


# -- the workflow site: street → two communities → three grid cells, one user per role ------------

WF_PASSWORD = "password-one-1"
# lon/lat squares, one per grid cell, for Open311 routing by location.
G1_AREA = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91]]
G2_AREA = [[116.41, 39.90], [116.42, 39.90], [116.42, 39.91], [116.41, 39.91]]
G3_AREA = [[116.42, 39.90], [116.43, 39.90], [116.43, 39.91], [116.42, 39.91]]


def workflow_site(broker_port: int = 1883) -> SiteConfig:
    def user(name: str, role: str, **extra: object) -> dict[str, object]:
        return {"username": name, "role": role, "password": WF_PASSWORD, **extra}

    return parse_site_config(
        {
            "site": SITE,
            "broker": {"host": "127.0.0.1", "port": broker_port},
            "edges": [
                {
                    "id": EDGE,
                    "cameras": [
                        {"id": "street-north", "url": "rtsp://127.0.0.1/a", "grid_cell": "g1"},
                        {"id": "elevator-1", "url": "rtsp://127.0.0.1/b", "grid_cell": "g2"},
                        {"id": "gate", "url": "rtsp://127.0.0.1/c", "grid_cell": "g3"},
                    ],
                }
            ],
            "grid": [
                {"code": "s1", "name": "Street", "level": "street", "workers": ["street-chief"]},
                {"code": "c1", "name": "Community 1", "level": "community", "parent": "s1", "workers": ["zhao-chief"]},
                {"code": "c2", "name": "Community 2", "level": "community", "parent": "s1"},
                {"code": "g1", "name": "Grid 1", "parent": "c1", "workers": ["wang-fang"], "area": G1_AREA},
                {"code": "g2", "name": "Grid 2", "parent": "c1", "workers": ["li-qiang"], "area": G2_AREA},
                {"code": "g3", "name": "Grid 3", "parent": "c2", "workers": ["chen"], "area": G3_AREA},
            ],
            "workers": [{"id": w, "name": w} for w in ("wang-fang", "li-qiang", "chen", "zhao-chief", "street-chief")],
            "users": [
                user("admin", "admin"),
                user("monitor", "monitor"),
                user("monitor-c2", "monitor", grid=["c2"]),
                user("supervisor", "supervisor"),
                user("chief", "grid_chief", grid=["c1"]),
                user("wang", "grid_worker", worker="wang-fang"),
                user("li", "grid_worker", worker="li-qiang"),
                user("chen", "grid_worker", worker="chen"),
                user("property", "unit", unit="pm-1"),
                user("other-unit", "unit", unit="pm-2"),
            ],
        }
    )


def workflow_config(**overrides: object):  # type: ignore[no-untyped-def]
    from central.workflow.config import WorkflowConfig

    data: dict[str, object] = {
        "defaults": {"auto_register_score": None,
                     "deadlines": {"dispatch": "10m", "accept": "10m", "handle": "1h", "check": "30m"}},
        "hazards": {
            "fire_lane_blocked": {"auto_register_score": None, "unit_kind": "property",
                                  "deadlines": {"dispatch": "10m", "accept": "10m", "handle": "1h", "check": "30m"}},
            "ebike_indoor": {"auto_register_score": 0.5,
                             "deadlines": {"dispatch": "5m", "accept": "5m", "handle": "30m", "check": "30m"}},
        },
        "units": [{"id": "pm-1", "name": "Property 1", "kind": "property", "grid": ["c1"]},
                  {"id": "pm-2", "name": "Property 2", "kind": "property", "grid": ["c2"]}],
    }
    data.update(overrides)
    return WorkflowConfig.model_validate(data)
