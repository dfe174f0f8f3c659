"""An alarm keeps its clip when queueing its event is slow: the worker holds the camera's packet
ring from the sample until the alarm's own hold is in place.

On a loaded 64-camera box the worker once released its hold before queueing the alarm, and the
queueing took seconds (the outbox's fsync'd write behind dozens of others): the reader trimmed
the alarm's seconds meanwhile, and the clip that followed said "no video of those seconds". Here
the real worker, pipeline and detector run on the street clip's real packets, fed as a camera
sends them (real time); the only stand-in is the slow outbox, a host whose ``enqueue`` of the
alarm takes 12 s (a disk stalled on demand cannot be made)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest

from broker.payloads import HazardEvent, Phase
from broker.siteconfig import SiteConfig
from edge.camera_worker import CameraWorker
from edge.evidence import EvidenceBlob
from edge.evidence_finisher import EvidenceFinisher
from edge.inference_gate import InferenceGate
from models.detector import load_detector

KERB_LANE = [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]]  # the parked cars of the street clip
SLOW_ENQUEUE_S = 12.0  # beyond the ring's own 13 s minus the clip's 5 s before the alarm


class _SlowOutboxHost:
    def __init__(self, site: SiteConfig, state_dir: Path) -> None:
        self.site = site
        self.edge_id = "e1"
        self.state_dir = state_dir
        self.inference_gate = InferenceGate(1)
        self.evidence_finisher = EvidenceFinisher()  # not started: the worker's own thread finishes its clips
        self.actuators = None
        self.queued: list[tuple[HazardEvent, list[EvidenceBlob]]] = []
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def enqueue(self, event: HazardEvent, blobs: list[EvidenceBlob]) -> None:
        if event.phase == Phase.START:
            time.sleep(SLOW_ENQUEUE_S)
        self.queued.append((event, blobs))

    def on_health(self, change: Any) -> None:
        pass

    def on_tamper(self, camera_id: str, cause: str | None) -> None:
        pass


def _feed_in_real_time(worker: CameraWorker, source: Path, seconds: float, stop: threading.Event) -> None:
    """The reader's own steps (``_adopt``, ``_remember``, decode, ``_publish_frame``), paced as a camera sends."""
    reader = worker.reader
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        reader._adopt(stream)
        started = time.monotonic()
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            offset = float(packet.pts * stream.time_base)
            if offset > seconds or stop.is_set():
                return
            time.sleep(max(0.0, started + offset - time.monotonic()))
            now = time.monotonic()
            reader._remember(now, packet)
            for frame in packet.decode():
                reader._publish_frame(frame, now, time.monotonic())


def _clip_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as clip:
        stream = clip.streams.video[0]
        pts = [f.pts for f in clip.decode(video=0)]
    return float((pts[-1] - pts[0]) * stream.time_base)


@pytest.mark.timeout(120)
def test_an_alarm_queued_slowly_still_gets_its_clip(shared_media: Path, tmp_path: Path) -> None:
    site = SiteConfig.model_validate({
        "site": "t", "broker": {"host": "127.0.0.1", "port": 1883},
        "edges": [{"id": "e1", "cameras": [{
            "id": "cam", "url": "rtsp://127.0.0.1:9/not-opened", "decode": "all", "detect_fps": 1,
            "tamper": {"enabled": False},
            "zones": [{"id": "kerb", "kind": "fire_lane", "polygon": KERB_LANE, "dwell_s": 6, "clear_s": 30}],
        }]}],
    })
    host = _SlowOutboxHost(site, tmp_path)
    worker = CameraWorker(host, site.edges[0].cameras[0], load_detector("yolov8n", intra_op_threads=1))
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_in_real_time,
                              args=(worker, shared_media / "street_parked_cars_720p.mp4", 30.0, stop), daemon=True)
    worker._thread.start()  # the worker thread only: the feeder plays the reader's part
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e.phase == Phase.UPDATE for e, _ in host.queued):
            time.sleep(0.2)
    finally:
        stop.set()
        worker._stop.set()
        feeder.join(10)
        worker._thread.join(10)
    starts = [e for e, _ in host.queued if e.phase == Phase.START]
    assert starts, "the parked cars in the kerb lane raised no alarm"
    updates = [blobs for e, blobs in host.queued if e.phase == Phase.UPDATE and e.incident_key == starts[0].incident_key]
    assert updates, "the alarm's clip never followed"
    clips = [b for b in updates[0] if b.content_type == "video/mp4"]
    assert clips, "the update came without its clip"
    # clip_pre_s + clip_post_s = 10 s (the alarm comes about 7 s into the feed, after its 6 s dwell).
    assert _clip_seconds(clips[0].data) >= 9.0
