"""What a city run is made of, decided before anything starts (pure: no sockets, no processes).

The layout is docs/deployment.md's "Beyond one machine" shrunk onto loopback: two district
Mosquittos bridged to a core Mosquitto with a standby core as the bridge's second address, ingest
workers on client-id slots subscribed on both cores, two API and scheduler processes, a
PostgreSQL primary with a streaming replica, and SeaweedFS's S3 for the evidence. Edges are the
edge's real outbox and publisher (``sharpeyes.chaos.edge_child``) in processes of their own.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, HazardKind, ModelRef, Phase
from broker.topics import event_topic, evidence_topic
from edge.outbox import OutboxMessage

SITE = "city"
CAMERAS_PER_EDGE = 4
EVENTS_PER_EPISODE = 3  # start, update, end: each may be stored by a different worker
BRIDGE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "city" / "mosquitto-district-bridge.conf"

# The faults, in the order they strike. Each names the window of events it is judged on: the
# events the edges wrote from its moment until the next fault's.
STEADY = "steady (no fault)"
WORKER_KILLED = "ingest worker kill -9 (for good)"
LEASE_HOLDER_KILLED = "lease holder kill -9"
CORE_KILLED = "core broker kill -9 (bridges fail over)"
REPLICA_STOPPED = "replica stopped"
PHASES = (STEADY, WORKER_KILLED, LEASE_HOLDER_KILLED, CORE_KILLED, REPLICA_STOPPED)


class CityPlanError(ValueError):
    """The run cannot be laid out as asked; the message names the option to change."""


@dataclass(frozen=True)
class CityOptions:
    events: int = 2100
    edges: int = 4
    districts: int = 2
    workers: int = 3
    apis: int = 2
    seconds: float = 90.0  # how long the edges take to write their events; the faults fall within
    receipt_timeout_s: float = 30.0  # the edge's product default
    snapshot_bytes: int = 20_000  # each start and update carries one JPEG of about this size
    scheduler_interval_s: float = 2.0
    deadline_s: float = 6.0  # every stage's deadline: short, so escalations happen during the run

    def __post_init__(self) -> None:
        if self.edges < self.districts or self.districts < 1:
            raise CityPlanError(f"--edges ({self.edges}) must be at least --districts ({self.districts}), and that at least 1")
        if self.workers < 2:
            raise CityPlanError("--workers must be at least 2: one of them is killed for good")
        if self.apis < 2:
            raise CityPlanError("--apis must be at least 2: the lease holder is killed and another must take over")
        if self.events < EVENTS_PER_EPISODE * self.edges:
            raise CityPlanError(f"--events must be at least {EVENTS_PER_EPISODE * self.edges} (one episode per edge)")
        if self.seconds < 20:
            raise CityPlanError("--seconds must be at least 20: four faults fall within the load")

    @property
    def episodes_per_edge(self) -> int:
        return -(-self.events // (EVENTS_PER_EPISODE * self.edges))

    def fault_offsets(self) -> dict[str, float]:
        """Seconds after the load starts at which each fault strikes: evenly through the load."""
        step = self.seconds / len(PHASES)
        return {name: round(step * i, 1) for i, name in enumerate(PHASES) if name != STEADY}


@dataclass(frozen=True)
class EdgeSpec:
    id: str
    district: int

    @property
    def cameras(self) -> list[str]:
        return [f"{self.id}-cam-{i + 1}" for i in range(CAMERAS_PER_EDGE)]  # unique in the site


def edge_specs(opts: CityOptions) -> list[EdgeSpec]:
    """Edges spread over the districts round-robin: d1-edge-1, d2-edge-1, d1-edge-2, ..."""
    specs = []
    for i in range(opts.edges):
        district = i % opts.districts + 1
        specs.append(EdgeSpec(f"d{district}-edge-{i // opts.districts + 1}", district))
    return specs


def site_yaml(edges: list[EdgeSpec], broker_port: int, admin_password: str) -> str:
    return yaml.safe_dump({
        "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker_port, "protocol": "5"},
        "edges": [{"id": e.id, "cameras": [{"id": c, "url": "rtsp://127.0.0.1:1/none"} for c in e.cameras]}
                  for e in edges],
        "users": [{"username": "admin", "role": "admin", "password": admin_password}],
    }, sort_keys=False)


def workflow_yaml(opts: CityOptions) -> str:
    """Short deadlines and a fast scheduler, so deadlines fall due (and must fire) during the run;
    no merging, so that every episode is its own incident and can be counted."""
    deadline = f"{opts.deadline_s:g}"
    stages = {"dispatch": deadline, "accept": deadline, "handle": deadline, "check": deadline}
    return yaml.safe_dump({
        "defaults": {"auto_register_score": 0.5, "deadlines": stages},
        "merge_window_s": 0,
        "scheduler_interval_s": opts.scheduler_interval_s,
    }, sort_keys=False)


def bridge_section(district: str, core_port: int, standby_port: int) -> str:
    """deploy/city/mosquitto-district-bridge.conf for one district on loopback: the core and the
    standby as its two addresses; plain TCP and anonymous (TLS and the bridge's account are
    tested on the same file by tests/broker/test_bridge.py)."""
    text = BRIDGE_FILE.read_text()
    replacements = {
        r"^connection .*$": f"connection {district}-to-core",
        r"^address .*$": f"address 127.0.0.1:{core_port} 127.0.0.1:{standby_port}",
        r"^remote_clientid .*$": f"remote_clientid bridge-{district}",
        r"^remote_username .*$": f"remote_username bridge.{district}",
        r"^bridge_cafile .*\n": "",
        r"^bridge_insecure .*\n": "",
        r"^remote_password .*\n": "",
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text, flags=re.MULTILINE)
        if n != 1:
            raise CityPlanError(f"{BRIDGE_FILE}: expected one line matching {pattern!r}, found {n}")
    # Fail over fast: the default waits up to a minute between tries.
    return re.sub(r"^restart_timeout .*$", "restart_timeout 1 5", text, flags=re.MULTILINE)


@dataclass
class Episode:
    """One hazard episode of one camera: start and update each with a snapshot, then end."""

    edge: str
    camera: str
    incident_key: str
    events: list[HazardEvent] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes

    def messages(self) -> list[OutboxMessage]:
        rows: list[OutboxMessage] = []
        for event in self.events:
            for ref in event.evidence:
                rows.append(OutboxMessage(evidence_topic(SITE, self.edge, ref.sha256), self.blobs[ref.sha256],
                                          "snapshot", ref.sha256))
            rows.append(OutboxMessage(event_topic(SITE, self.edge), event.to_wire(), "event", str(event.event_id)))
        return rows


PHASE_SCORES = ((Phase.START, 0.7), (Phase.UPDATE, 0.9), (Phase.END, 0.8))


def make_episode(edge: str, camera: str, n: int, jpeg: bytes, now: datetime | None = None) -> Episode:
    """The episode's events share an incident key; each JPEG is the footage frame with the event's
    id after its end marker, so every blob is distinct and still a valid JPEG."""
    now = now or datetime.now(UTC)
    key = f"city-{edge}-{camera}-{n}-{uuid.uuid4().hex[:8]}"
    episode = Episode(edge, camera, key)
    for seq, (phase, score) in enumerate(PHASE_SCORES):
        event_id = uuid.uuid4()
        evidence = []
        if phase != Phase.END:
            blob = jpeg + event_id.bytes
            sha = hashlib.sha256(blob).hexdigest()
            episode.blobs[sha] = blob
            evidence.append(EvidenceRef(sha256=sha, content_type="image/jpeg", bytes=len(blob)))
        observed = now + timedelta(milliseconds=10 * seq)
        episode.events.append(HazardEvent(
            event_id=event_id, incident_key=key, hazard=HazardKind.FIRE_LANE_BLOCKED, phase=phase, site=SITE,
            edge=edge, camera=camera, zone=None, started_at=now, observed_at=observed, seq=seq, score=score,
            objects=[DetectedObject(label="car", score=score, box=(0.1, 0.5, 0.3, 0.9))], evidence=evidence,
            model=ModelRef(name="yolov8n", sha256="0" * 64)))
    return episode


def phase_at(offset_s: float, offsets: dict[str, float]) -> str:
    """The fault window an event written ``offset_s`` after the load started belongs to."""
    current = STEADY
    for name in PHASES:
        if name != STEADY and offset_s >= offsets[name]:
            current = name
    return current
