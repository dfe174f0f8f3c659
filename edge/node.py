"""A live edge node: every camera of one edge, the detector, the rules and the outbox."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from broker import topics
from broker.payloads import CameraHealth, EdgeStatus, HealthState
from broker.siteconfig import CameraConfig, SiteConfig
from edge.camera import CameraReader, HealthChange
from edge.camera_watch import CameraWatch
from edge.outbox import Outbox
from edge.publisher import OutboxPublisher

log = logging.getLogger("sharpeyes.edge.node")

VERSION = "0.1.0"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CameraWorker:
    """Samples one camera's newest frames at its detect fps and turns them into outbox messages."""

    def __init__(self, node: "EdgeNode", camera: CameraConfig, detector) -> None:
        from edge.pipeline import CameraPipeline

        self.node = node
        self.camera = camera
        self.reader = CameraReader(camera.id, camera.url, decode=camera.decode_mode(), on_health=node.on_health)
        self.watch = CameraWatch(
            site=node.site.site,
            edge=node.edge_id,
            camera=camera,
            next_seq=node.next_seq,
            reference_path=node.state_dir / "reference" / f"{camera.id}.png",
            started_at=time.monotonic(),
        )
        self.pipeline = CameraPipeline(
            site=node.site.site,
            edge=node.edge_id,
            camera_id=camera.id,
            rules=camera,
            detector=detector,
            next_seq=node.next_seq,
            gb28181_channel_id=camera.gb28181_channel_id,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"worker-{camera.id}", daemon=True)
        self.samples = 0

    def start(self) -> None:
        self.reader.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.reader.stop()
        self._thread.join(5)

    def _run(self) -> None:
        last = 0
        while not self._stop.is_set():
            frame = self.reader.next_frame(last, timeout=1.0)
            if frame is None:
                continue
            last = frame.number
            was_tampered = self.watch.tamper.active
            for emission in self.watch.on_frame(frame.image, frame.monotonic, frame.wall):
                self.node.enqueue(emission)
            if self.watch.tamper.active != was_tampered:
                self.node.on_tamper(self.camera.id, self.watch.tamper_cause if self.watch.tamper.active else None)
            if not self.pipeline.due(frame.monotonic):
                continue
            self.samples += 1
            try:
                emissions = self.pipeline.process(frame.image, frame.monotonic, frame.wall)
            except Exception:  # one bad frame must not stop the camera
                log.exception("camera %s: pipeline failed on frame %d", self.camera.id, frame.number)
                continue
            for emission in emissions:
                self.node.enqueue(emission)


class EdgeNode:
    def __init__(self, site: SiteConfig, edge_id: str, outbox_path: Path | str, *, model: str | None = None) -> None:
        self.site = site
        self.edge_id = edge_id
        self.edge = site.edge(edge_id)
        self.outbox = Outbox(outbox_path)
        self.state_dir = Path(outbox_path).parent
        self._health: dict[str, CameraHealth] = {}
        self._health_lock = threading.Lock()
        self.publisher = OutboxPublisher(
            site.broker,
            client_id=f"sharpeyes-edge-{site.site}-{edge_id}",
            outbox=self.outbox,
            will=(topics.status_topic(site.site, edge_id), self._status("offline")),
            retained_on_connect=self._retained_state,
        )
        self._model = model
        self.workers: list[CameraWorker] = []
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="camera-supervisor", daemon=True)

    def next_seq(self) -> int:
        return self.outbox.next_counter("seq")

    def _status(self, state: str) -> bytes:
        status = EdgeStatus(
            site=self.site.site,
            edge=self.edge_id,
            state=state,
            at=_now(),
            version=VERSION,
            cameras=[c.id for c in self.edge.cameras],
        )
        return status.model_dump_json(by_alias=True).encode()

    def _retained_state(self) -> list[tuple[str, bytes]]:
        messages = [(topics.status_topic(self.site.site, self.edge_id), self._status("online"))]
        with self._health_lock:
            for health in self._health.values():
                messages.append(
                    (
                        topics.camera_health_topic(self.site.site, self.edge_id, health.camera),
                        health.model_dump_json(by_alias=True).encode(),
                    )
                )
        return messages

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
        self.publisher.publish_now(
            topics.camera_health_topic(self.site.site, self.edge_id, change.camera),
            health.model_dump_json(by_alias=True).encode(),
        )

    def on_tamper(self, camera_id: str, cause: str | None) -> None:
        """Tampering is a health state too: retained ``tampered`` while it lasts, ``online`` after."""
        self.on_health(HealthChange(camera_id, "tampered" if cause else "online", _now(), cause))

    def _supervise(self) -> None:
        """Once a second: the offline rule of every camera, driven by the time since its last frame."""
        while not self._stopping.wait(1.0):
            now, wall = time.monotonic(), _now()
            for worker in self.workers:
                for emission in worker.watch.tick(now, wall, worker.reader.cause):
                    self.enqueue(emission)

    def enqueue(self, emission) -> None:
        """Blobs first, then the event that references them, in one atomic outbox write."""
        messages: list[tuple[str, bytes, int, bool, str]] = []
        for blob in emission.blobs:
            kind = "clip" if blob.content_type == "video/mp4" else "snapshot"
            messages.append((topics.evidence_topic(self.site.site, self.edge_id, blob.sha256), blob.data, 1, False, kind))
        event = emission.event
        messages.append((topics.event_topic(self.site.site, self.edge_id), event.to_json().encode(), 1, False, "event"))
        self.outbox.put_many(messages)
        log.info(
            "%s %s camera=%s zone=%s key=%s", event.hazard.value, event.phase.value, event.camera, event.zone,
            event.incident_key,
        )

    def start(self) -> None:
        from edge.detector import load_detector

        models = {c.model for c in self.edge.cameras}
        detectors = {name: load_detector(self._model or name) for name in models}
        pending, size = self.outbox.depth()
        if pending:
            log.info("outbox holds %d messages (%d bytes) from before; delivering them first", pending, size)
        self.publisher.start()
        for camera in self.edge.cameras:
            worker = CameraWorker(self, camera, detectors[camera.model])
            self.workers.append(worker)
            worker.start()
        self._supervisor.start()
        log.info("edge %s/%s running %d cameras", self.site.site, self.edge_id, len(self.workers))

    def stop(self) -> None:
        self._stopping.set()
        self._supervisor.join(5)
        for worker in self.workers:
            worker.stop()
        self.publisher.wait_until_drained(3.0)
        self.publisher.stop(final=(topics.status_topic(self.site.site, self.edge_id), self._status("offline")))
        self.outbox.close()
