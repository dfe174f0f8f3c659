"""One camera's worker thread: newest frame -> health watch -> (at the detect cadence) pipeline
-> actuators (door hold, voice warning) -> evidence (annotated snapshot, raw frame, and a clip cut from the packet ring) -> outbox."""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from broker.cameraconfig import EVIDENCE_OPEN_S, CameraConfig
from broker.payloads import EvidenceRef, HazardEvent, Phase
from edge.camera import CameraReader, Frame
from edge.camera_watch import CameraWatch
from edge.clip import mux_mp4
from edge.evidence import EvidenceBlob, raw_frame
from edge.evidence_stream import EvidenceStream
from edge.inference_gate import InferenceGate
from edge.pipeline import CameraPipeline, Emission
from edge.worker_host import WorkerHost
from models.detector import Detector, TimedDetector

log = logging.getLogger(__name__)

EVIDENCE_STREAM_DELAY_S = 2.0


# eq=False: the reader keys its clip holds by this object, and a field-wise hash would hash the
# event, whose list fields (an e-bike alarm's) cannot be hashed: identity is what a hold means.
@dataclass(frozen=True, slots=True, eq=False)
class PendingClip:
    """What follows an alarm as an ``update``: its clip, and beside a detection sub-stream the
    main stream's full-resolution picture of the moment ``at``."""

    due: float  # monotonic time when the "after" part of the clip has arrived
    start: float
    end: float
    at: float
    event: HazardEvent


def with_evidence(event: HazardEvent, blobs: list[EvidenceBlob]) -> HazardEvent:
    refs = [EvidenceRef(sha256=b.sha256, content_type=b.content_type, bytes=len(b.data)) for b in blobs]
    return event.model_copy(update={"evidence": [*event.evidence, *refs]})


class _Slot:
    """One detection slot, taken at once and handed back once, whichever release comes first."""

    def __init__(self, gate: InferenceGate, deadline: float) -> None:
        self._gate = gate
        gate.acquire(deadline)
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.release()


class CameraWorker:
    def __init__(self, host: WorkerHost, camera: CameraConfig, detector: Detector, *, start_delay_s: float = 0.0) -> None:
        self.host = host
        self.camera = camera
        self.detector = TimedDetector(detector)
        ring_s = camera.clip_pre_s + camera.clip_post_s + 3.0  # + one keyframe interval of slack
        detect_url = camera.detect_stream_url()
        # Beside an on-demand main stream that may open too late for a clip's pre-roll (a lift),
        # the detection stream keeps the clip's seconds as well (edge/evidence_stream.py).
        preroll = camera.preroll_from_detection_stream()  # implies a detect_url
        # The detection stream: what the pipeline, the scene gate and the health watch decode.
        self.reader = CameraReader(
            camera.id, detect_url or camera.stream_url(), decode=camera.decode_mode(),
            ring_seconds=ring_s if preroll or not detect_url else 0.0, on_health=host.on_health,
            start_delay_s=start_delay_s,
        )
        # With a sub-stream for detection, the main stream is only demuxed (clips), and a keyframe
        # of it decoded for the full-resolution picture that follows an alarm, or for a recheck;
        # on demand, only while a zone times something towards an alarm (edge/evidence_stream.py).
        self.evidence_reader: CameraReader | EvidenceStream = self.reader if detect_url is None else EvidenceStream(
            lambda delay_s: CameraReader(f"{camera.id} (evidence stream)", camera.stream_url(), decode="none",
                                         ring_seconds=ring_s, start_delay_s=delay_s),
            on_demand=camera.evidence_on_demand(),
            # Opened after the detection stream: a box of 64 cameras opens 128 sessions, and the
            # detection streams matter first.
            start_delay_s=start_delay_s + EVIDENCE_STREAM_DELAY_S,
            preroll=self.reader if preroll else None,
        )
        self.started_monotonic = time.monotonic()
        self.watch = CameraWatch(
            site=host.site.site,
            edge=host.edge_id,
            camera=camera,
            next_seq=host.next_seq,
            reference_path=host.state_dir / "reference" / f"{camera.id}.png",
            started_at=self.started_monotonic,
        )
        self.pipeline = CameraPipeline(
            site=host.site.site,
            edge=host.edge_id,
            camera_id=camera.id,
            rules=camera,
            detector=self.detector,
            next_seq=host.next_seq,
            gb28181_channel_id=camera.gb28181_channel_id,
            early_share=0.25 if camera.decode_mode() == "keyframes" else 0.0,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"worker-{camera.id}", daemon=True)
        self._clips: list[PendingClip] = []
        # Clips handed to the node's evidence finisher and not cut yet: their ring must stay open.
        self._finishing = 0
        self._finishing_lock = threading.Lock()
        self.samples = 0
        self.late_samples = 0

    def start(self) -> None:
        self.reader.start()
        if self.sub_stream:
            self.evidence_reader.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.reader.stop()
        if self.sub_stream:
            self.evidence_reader.stop()
        self._thread.join(5)

    @property
    def sub_stream(self) -> bool:
        """Detection runs on the camera's sub-stream, beside the evidence (main) stream."""
        return self.evidence_reader is not self.reader

    @property
    def decode_seconds(self) -> float:
        """Both streams' decoding: the detection frames, and the evidence keyframes beside a sub-stream."""
        extra = self.evidence_reader.decode_seconds if self.sub_stream else 0.0
        return self.reader.decode_seconds + extra

    def evidence_image(self, frame: Frame) -> np.ndarray:
        """The picture a recheck answers with: the main stream's newest keyframe when detection runs
        on a sub-stream (the detection frame when that stream has none yet), else the frame itself."""
        if not self.sub_stream:
            return frame.image
        image = self.evidence_reader.keyframe_image()
        return frame.image if image is None else image

    def latest_frame(self, timeout: float = 5.0) -> Frame | None:
        """The newest frame, waiting up to ``timeout`` for one if none has arrived yet."""
        return self.reader.next_frame(0, timeout)

    def _run(self) -> None:
        last = 0
        while not self._stop.is_set():
            frame = self.reader.next_frame(last, timeout=1.0)
            self._finish_due_clips()
            if isinstance(self.evidence_reader, EvidenceStream):
                self.evidence_reader.update(time.monotonic(), self._evidence_needed())
            if frame is None:
                continue
            last = frame.number
            self._watch_health(frame)
            if not self.pipeline.due(frame.monotonic):
                continue
            self.samples += 1
            # When the zones look as at the last detection (the scene gate), the last detections
            # stand: no slot and no detector for this sample.
            detect = self.pipeline.needs_detection(frame.image, frame.monotonic)
            # Due by the time the camera's next sample is: the gate serves the nearest deadline first.
            # The slot is held for the detection only; tracking, rules and the evidence JPEGs run
            # after it, so 32 cameras alarming at once do not queue the others' detections.
            # The alarm's clip starts clip_pre_s before this frame: keep those seconds in the ring
            # while this camera waits its turn for the detector (seconds on a loaded box).
            # The hold lasts until the alarm's own hold is in place (``_deliver``): released before,
            # a box minutes behind trimmed the alarm's seconds while its event was being queued.
            self.evidence_reader.hold(self, frame.monotonic - self.camera.clip_pre_s)
            try:
                slot = _Slot(self.host.inference_gate, frame.monotonic + 1.0 / (self.camera.detect_fps or 1.0)) if detect else None
                try:
                    # While this camera waited for a slot, a newer frame may have arrived: use it.
                    newest = self.reader.newest() if detect else None
                    if newest is not None and newest.number > frame.number:
                        frame = newest
                        last = frame.number
                    emissions = self.pipeline.process(frame.image, frame.monotonic, frame.wall,
                                                      after_detect=slot.release if slot else None, detect=detect)
                except Exception:  # one bad frame must not stop the camera
                    log.exception("camera %s: pipeline failed on frame %d", self.camera.id, frame.number)
                    continue
                finally:
                    if slot is not None:
                        slot.release()
                self._actuate(emissions, frame)
                for emission in emissions:
                    self._deliver(emission.event, emission.blobs, frame)
            finally:
                self.evidence_reader.release(self)

    def _actuate(self, emissions: list[Emission], frame: Frame) -> None:
        """Doors and speakers first, before evidence is encoded and queued: a hand-off to the
        actuators' own threads, which never makes this camera wait."""
        hub = self.host.actuators
        if hub is None:
            return
        for emission in emissions:
            event = emission.event
            if event.zone is None or not hub.drives(self.camera.id, event.zone):
                continue
            if event.phase == Phase.START:
                hub.hazard_started(self.camera.id, event.zone, event.incident_key, frame.monotonic)
            elif event.phase == Phase.END:
                hub.hazard_ended(self.camera.id, event.zone)

    def _watch_health(self, frame: Frame) -> None:
        was_tampered = self.watch.tamper.active
        for emission in self.watch.on_frame(lambda: frame.image, frame.monotonic, frame.wall):
            self.host.enqueue(emission.event, emission.blobs)
        if self.watch.tamper.active != was_tampered:
            self.host.on_tamper(self.camera.id, self.watch.tamper_cause if self.watch.tamper.active else None)

    def _deliver(self, event: HazardEvent, blobs: list[EvidenceBlob], frame: Frame) -> None:
        if event.phase == Phase.END:
            self.host.enqueue(event, blobs)
            return
        # The alarm leaves at once with the detection frame's pictures; beside a sub-stream the
        # full-resolution picture follows with the clip (decoding it here delayed a 64-camera
        # alert burst by seconds: docs/benchmarks.md).
        raw = raw_frame(frame.image)
        event = with_evidence(event, [raw])
        self.host.enqueue(event, [*blobs, raw])
        if self.camera.clips or self.sub_stream:
            pending = PendingClip(
                due=frame.monotonic + (self.camera.clip_post_s if self.camera.clips else 0.0),
                start=frame.monotonic - self.camera.clip_pre_s,
                end=frame.monotonic + self.camera.clip_post_s,
                at=frame.monotonic,
                event=event,
            )
            self._clips.append(pending)
            self.evidence_reader.hold(pending, min(pending.start, pending.at))

    def _finish_due_clips(self) -> None:
        """The clip needs the seconds after the event too, so it follows as an ``update`` of the
        episode, with the main stream's full-resolution picture when detection runs on a sub-stream.
        The node's evidence finisher cuts it, one alarm after another: a dozen cameras cutting at
        once made every camera's samples late."""
        now = time.monotonic()
        ready = [c for c in self._clips if self._ready(c, now)]
        if not ready:
            return
        self._clips = [c for c in self._clips if c not in ready]
        for pending in ready:
            with self._finishing_lock:
                self._finishing += 1
            self.host.evidence_finisher.submit(functools.partial(self._finish_clip, pending))

    def _ready(self, pending: PendingClip, now: float) -> bool:
        if pending.due > now:
            return False
        # An on-demand main stream opened seconds before a lift's alarm may not have sent its first
        # keyframe by the clip's end: the full-resolution picture waits for it, EVIDENCE_OPEN_S at most.
        return (not self.sub_stream or self.evidence_reader.first_keyframe_at() is not None
                or now >= pending.due + EVIDENCE_OPEN_S)

    def _finish_clip(self, pending: PendingClip) -> None:
        try:
            try:
                blobs = [blob for blob in (self._clip(pending), self._full_picture(pending.at)) if blob is not None]
            finally:
                self.evidence_reader.release(pending)
            if not blobs:
                return
            wall = datetime.now(UTC)
            update = pending.event.model_copy(
                update={
                    "event_id": uuid.uuid4(),
                    "phase": Phase.UPDATE,
                    "observed_at": max(wall, pending.event.observed_at),
                    "seq": self.host.next_seq(),
                    "evidence": [EvidenceRef(sha256=b.sha256, content_type=b.content_type, bytes=len(b.data))
                                 for b in blobs],
                }
            )
            self.host.enqueue(update, blobs)
        finally:
            with self._finishing_lock:
                self._finishing -= 1

    def _evidence_needed(self) -> bool:
        """A zone times something towards an alarm, or a clip still waits for its seconds or its cut."""
        with self._finishing_lock:
            finishing = self._finishing
        return self.pipeline.watching() or bool(self._clips) or finishing > 0

    def _clip(self, pending: PendingClip) -> EvidenceBlob | None:
        if not self.camera.clips:
            return None
        template, packets = self.evidence_reader.packets_between(pending.start, pending.end)
        try:
            data = mux_mp4(template, packets) if packets else b""
            if not data:
                raise ValueError(self._why_no_video(pending))
            return EvidenceBlob.of(data, "video/mp4")
        except Exception as exc:  # noqa: BLE001 - a failed clip must not stop the camera
            log.warning("camera %s: no clip for %s: %s", self.camera.id, pending.event.incident_key, exc)
            return None

    def _why_no_video(self, pending: PendingClip) -> str:
        """What the ring held instead of the clip's seconds: the log says which failure it was."""
        span = self.evidence_reader.ring_span()
        late = time.monotonic() - pending.due
        if span is None:
            return "the packet ring is empty (the stream reconnected or sends nothing)"
        if span[0] > pending.end:
            return (f"no video of those seconds in the packet ring: cut {late:.0f} s after they ended, and the ring "
                    f"keeps {span[1] - span[0]:.0f} s (the box is behind; hold_max_s bounds how long it waits)")
        return (f"no keyframe-led video of those seconds in the packet ring (it holds {span[0] - pending.start:+.0f} s "
                f"to {span[1] - pending.start:+.0f} s from the clip's start; the stream may have reconnected)")

    def _full_picture(self, at: float) -> EvidenceBlob | None:
        if not self.sub_stream:
            return None
        image = self.evidence_reader.keyframe_image(at)
        return None if image is None else raw_frame(image)

    def snapshot_now(self) -> np.ndarray | None:
        frame = self.latest_frame(timeout=5.0)
        return None if frame is None else self.evidence_image(frame)
