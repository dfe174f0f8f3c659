"""A live edge node: every camera of one edge, the outbox and publisher, health and heartbeat,
metrics, and the commands central sends (``recheck``, ``config``)."""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from broker import topics
from broker.cameraconfig import CameraConfig, EdgeConfig
from broker.edgeconfig import config_version
from broker.payloads import (
    RECEIPTS_CAPABILITY,
    Actuation,
    CameraHealth,
    EdgeHeartbeat,
    EdgeStatus,
    HazardEvent,
    HealthState,
)
from broker.siteconfig import SiteConfig
from edge.actuators.hub import ActuatorHub
from edge.camera import HealthChange
from edge.camera_figures import CameraSnapshot
from edge.camera_worker import CameraWorker
from edge.commands import CommandHandler
from edge.config_state import ConfigState
from edge.evidence import EvidenceBlob
from edge.evidence_finisher import EvidenceFinisher
from edge.inference_gate import InferenceGate
from edge.metrics import serve_metrics
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import OutboxPublisher
from models.detector import Detector, load_detector

log = logging.getLogger(__name__)

GIL_SWITCH_INTERVAL_S = 0.001

VERSION = "0.1.0"


def _now() -> datetime:
    return datetime.now(UTC)


class EdgeNode:
    def __init__(self, site: SiteConfig, edge_id: str, outbox_path: Path | str, *, model: str | None = None) -> None:
        self.site = site
        self.edge_id = edge_id
        self.edge = site.edge(edge_id)
        self.config_version = config_version(self.edge)
        self.outbox = Outbox(outbox_path, max_bytes=self.edge.outbox_max_bytes, max_age_s=self.edge.outbox_max_age_s,
                             max_file_bytes=self.edge.outbox_max_file_bytes)
        self.state_dir = Path(outbox_path).parent
        # The version applied or refused, for the heartbeat (desired vs reported state); a change is
        # reported at once rather than at the next heartbeat.
        self.config_state = ConfigState(self.outbox, self.config_version, on_change=self._config_reported)
        # A retained config command arrives as soon as the publisher connects, before the cameras are
        # up: apply_config waits for start() to finish rather than race it.
        self._started = threading.Event()
        self._health: dict[str, CameraHealth] = {}
        self._health_lock = threading.Lock()
        self.event_counts: Counter[tuple[str, str]] = Counter()
        self.publisher = OutboxPublisher(
            site.broker,
            client_id=f"sharpeyes-edge-{site.site}-{edge_id}",
            outbox=self.outbox,
            will=(topics.status_topic(site.site, edge_id), self._status("offline")),
            retained_on_connect=self._retained_state,
            username=edge_id,
        )
        self._model = model
        self._detectors: dict[str, Detector] = {}
        # Cameras queue for a few single-threaded detections rather than all running at once:
        # bounded activation memory, no 32-way contention on two cores, newest frame first.
        self.inference_slots = self.edge.inference_slots or os.cpu_count() or 1
        self.inference_gate = InferenceGate(self.inference_slots)
        # Clips and full-resolution pictures after alarms, one at a time (edge/evidence_finisher.py).
        self.evidence_finisher = EvidenceFinisher()
        self.workers: list[CameraWorker] = []
        self._workers_lock = threading.RLock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="camera-supervisor", daemon=True)
        self.metrics_port: int | None = None
        self.actuators: ActuatorHub | None = None  # started with the node (door holds, voice warnings)

    # -- identity, status, health ----------------------------------------------------------------
    def next_seq(self) -> int:
        return self.outbox.next_counter("seq")

    def _status(self, state: str, heartbeat: EdgeHeartbeat | None = None) -> bytes:
        status = EdgeStatus(
            site=self.site.site,
            edge=self.edge_id,
            state=state,
            at=_now(),
            version=f"{VERSION}+config.{self.config_version}",
            cameras=[c.id for c in self.edge.cameras],
            heartbeat=heartbeat,
            capabilities=[RECEIPTS_CAPABILITY],
        )
        return status.to_wire()

    def _retained_state(self) -> list[tuple[str, bytes]]:
        messages = [(topics.status_topic(self.site.site, self.edge_id), self._status("online"))]
        with self._health_lock:
            for health in self._health.values():
                messages.append(
                    (
                        topics.camera_health_topic(self.site.site, self.edge_id, health.camera),
                        health.to_wire(),
                    )
                )
        return messages

    def health_state(self, camera_id: str) -> str:
        with self._health_lock:
            health = self._health.get(camera_id)
        return health.state.value if health else "offline"

    def on_health(self, change: HealthChange) -> None:
        health = CameraHealth(
            site=self.site.site,
            edge=self.edge_id,
            camera=change.camera,
            state=HealthState(change.state),
            since=change.since,
            cause=change.cause,
        )
        with self._health_lock:
            self._health[change.camera] = health
        if change.state != "online" and self.actuators is not None:
            self.actuators.camera_lost(change.camera)  # no eyes on the zone: no door held on its word
        self.publisher.publish_now(
            topics.camera_health_topic(self.site.site, self.edge_id, change.camera),
            health.to_wire(),
        )

    def on_tamper(self, camera_id: str, cause: str | None) -> None:
        """Tampering is a health state too: retained ``tampered`` while it lasts, ``online`` after."""
        self.on_health(HealthChange(camera_id, "tampered" if cause else "online", _now(), cause))

    def camera_snapshots(self, now: float) -> list[CameraSnapshot]:
        """Every camera's figures at ``now`` (monotonic), in configuration order: what the
        heartbeat and /metrics both report."""
        with self._workers_lock:
            workers = list(self.workers)
        return [CameraSnapshot.of(worker, self.health_state(worker.camera.id), now) for worker in workers]

    def heartbeat(self, interval_s: float) -> EdgeHeartbeat:
        messages, size = self.outbox.depth()
        cameras = {snap.camera: snap.heartbeat_figures() for snap in self.camera_snapshots(time.monotonic())}
        return EdgeHeartbeat(
            interval_s=interval_s, outbox_messages=messages, outbox_bytes=size, dropped=dict(self.outbox.dropped),
            cameras=cameras, publish_refused=self.publisher.last_refusal, dead_letters=self.outbox.dead_letter_count(),
            awaiting_receipt=self.outbox.awaiting_receipt(), resends=self.publisher.resends,
            disk_full=self.outbox.disk_full, actuators=self.actuators.figures() if self.actuators else {},
            config=self.config_state.report(),
        )

    # -- the outbox --------------------------------------------------------------------------------
    def enqueue(self, event: HazardEvent, blobs: list[EvidenceBlob]) -> None:
        """Blobs first, then the event that references them, in one atomic outbox write."""
        # Keyed by what central's receipt names: kept until central has them (edge.publisher).
        messages = [
            OutboxMessage(topics.evidence_topic(self.site.site, self.edge_id, blob.sha256), blob.data,
                          kind="clip" if blob.content_type == "video/mp4" else "snapshot", key=blob.sha256)
            for blob in blobs
        ]
        # Updates are the outbox's kind "update": its policy drops them before any start or end.
        messages.append(OutboxMessage(topics.event_topic(self.site.site, self.edge_id), event.to_wire(),
                                      kind="update" if event.phase.value == "update" else "event", key=str(event.event_id)))
        self.outbox.put_many(messages)
        self.event_counts[(event.hazard.value, event.phase.value)] += 1
        log.info(
            "%s %s camera=%s zone=%s key=%s evidence=%d", event.hazard.value, event.phase.value, event.camera,
            event.zone, event.incident_key, len(event.evidence),
        )

    def enqueue_actuation(self, record: Actuation) -> None:
        """Kept until central's receipt, like a hazard event (its event_id is the key)."""
        self.outbox.put_many([OutboxMessage(topics.actuation_topic(self.site.site, self.edge_id), record.to_wire(),
                                            kind="event", key=str(record.event_id))])

    def _publish_online(self, beat: EdgeHeartbeat | None = None) -> None:
        self.publisher.publish_now(topics.status_topic(self.site.site, self.edge_id), self._status("online", beat))

    def _config_reported(self) -> None:
        if self._started.is_set():
            self._publish_online(self.heartbeat(self.edge.heartbeat_s))

    def _actuator_health_changed(self) -> None:
        # An actuator stopped (or resumed) answering: say so now, not at the next heartbeat.
        self._publish_online(self.heartbeat(self.edge.heartbeat_s))

    # -- lifecycle -----------------------------------------------------------------------------------
    def _detector_for(self, camera: CameraConfig) -> Detector:
        name = self._model or camera.model
        if name not in self._detectors:
            cpu_only = self.edge.providers == ["CPUExecutionProvider"]
            self._detectors[name] = load_detector(
                name, providers=self.edge.providers, intra_op_threads=1 if cpu_only else None
            )
        return self._detectors[name]

    def start(self) -> None:
        # Two threads per camera (more with a sub-stream) wait on one interpreter lock; at the default
        # 5 ms hand-over a 64-camera box made samples seconds late while a core sat idle
        # (docs/benchmarks.md: 11/64 cameras sustained at 5 ms, 64/64 at 1 ms).
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        for camera in self.edge.cameras:
            self._detector_for(camera)
        pending, size = self.outbox.depth()
        if pending:
            log.info("outbox holds %d messages (%d bytes) from before; delivering them first", pending, size)
        self.commands = CommandHandler(self)
        self.publisher.follow_central(self.site.site, self.edge_id, self.commands.on_message)
        self.publisher.start()
        self.evidence_finisher.start()
        self.actuators = ActuatorHub(self.edge, site=self.site.site, record=self.enqueue_actuation,
                                     on_failing=self._actuator_health_changed)
        # Spread the first connections over up to 2 s: 32 cameras opening at once time out together.
        spread = min(2.0, 0.1 * len(self.edge.cameras))
        with self._workers_lock:
            for camera in self.edge.cameras:
                worker = CameraWorker(self, camera, self._detector_for(camera), start_delay_s=random.uniform(0, spread))
                self.workers.append(worker)
                worker.start()
        self._supervisor.start()
        if self.edge.metrics_port is not None:
            self.metrics_port = serve_metrics(self, self.edge.metrics_host, self.edge.metrics_port)
            log.info("metrics on http://%s:%d/metrics", self.edge.metrics_host, self.metrics_port)
        self._started.set()
        log.info("edge %s/%s running %d cameras (config %s)", self.site.site, self.edge_id, len(self.workers), self.config_version)

    def _supervise(self) -> None:
        """Once a second: the offline rule of every camera; every ``heartbeat_s`` the heartbeat."""
        last_heartbeat = time.monotonic()
        while not self._stopping.wait(1.0):
            now, wall = time.monotonic(), _now()
            with self._workers_lock:
                workers = list(self.workers)
            for worker in workers:
                for emission in worker.watch.tick(now, wall, worker.reader.cause, worker.reader.last_frame_monotonic):
                    self.enqueue(emission.event, emission.blobs)
            if now - last_heartbeat >= self.edge.heartbeat_s:
                last_heartbeat = now
                self._publish_online(self.heartbeat(self.edge.heartbeat_s))

    def apply_config(self, edge: EdgeConfig) -> str:
        """Replace cameras, zones and thresholds without a restart. Cameras whose configuration is
        unchanged keep running (and keep their episodes); the others are restarted or removed.

        ``edge`` is this edge's own configuration (``broker.edgeconfig``); the site's name and
        broker settings stay those the node started with."""
        if edge.id != self.edge_id:
            raise ValueError(f"configuration is for edge {edge.id!r}, this is {self.edge_id!r}")
        self._started.wait(120)
        site = self.site.model_copy(update={"edges": [edge if e.id == edge.id else e for e in self.site.edges]})
        with self._workers_lock:
            wanted = {c.id: c for c in edge.cameras}
            keep: list[CameraWorker] = []
            for worker in self.workers:
                if wanted.get(worker.camera.id) == worker.camera:
                    keep.append(worker)
                    del wanted[worker.camera.id]
                else:
                    worker.stop()
                    if self.actuators is not None:
                        self.actuators.camera_lost(worker.camera.id)  # its episodes end with it
                    log.info("camera %s stopped for the new configuration", worker.camera.id)
            for camera in wanted.values():
                worker = CameraWorker(self, camera, self._detector_for(camera))
                worker.start()
                keep.append(worker)
                log.info("camera %s started from the new configuration", camera.id)
            order = [c.id for c in edge.cameras]
            self.workers = sorted(keep, key=lambda w: order.index(w.camera.id))
            self.site, self.edge = site, edge
            self.config_version = config_version(edge)
            if self.actuators is not None:
                self.actuators.apply(edge)
        reporting = self.config_state.reporting
        self.config_state.applied(self.config_version)  # when reporting, this publishes a heartbeat naming it
        if not reporting:
            self._publish_online()
        log.info("configuration %s applied: %d cameras", self.config_version, len(self.workers))
        return self.config_version

    def worker(self, camera_id: str) -> CameraWorker | None:
        with self._workers_lock:
            return next((w for w in self.workers if w.camera.id == camera_id), None)

    def stop(self) -> None:
        if self.actuators is not None:
            self.actuators.stop()  # doors first: every hold let go and recorded before anything else
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join(5)
        with self._workers_lock:
            for worker in self.workers:
                worker.stop()
        self.evidence_finisher.stop()  # the clips already due are cut and queued before the outbox closes
        self.publisher.wait_until_drained(3.0)
        self.publisher.stop(final=(topics.status_topic(self.site.site, self.edge_id), self._status("offline")))
        self.outbox.close()
