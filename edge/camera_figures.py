"""One camera's figures at one moment, read from its worker in one place.

The heartbeat (``EdgeNode.heartbeat``) and /metrics (``edge.metrics``) both report from this
snapshot, so that the two cannot drift apart on a formula (the detect cadence among them)."""

from __future__ import annotations

from dataclasses import dataclass

from broker.payloads import CameraFigures, ModelRef
from edge.camera_worker import CameraWorker


@dataclass(frozen=True, slots=True)
class CameraSnapshot:
    camera: str
    state: str  # online, offline or tampered: the node's health record of the camera
    frames_in: int
    frames_decoded: int
    samples: int
    detected: int  # samples the detector ran on; the others the scene gate answered (gated)
    gated: int
    detect_fps: float  # the detect cadence achieved: samples per second since the worker started
    decode_seconds: float
    inference_seconds: float
    reconnects: int
    seconds_since_frame: float | None
    # Plain strings, not a ModelRef: a scrape must not validate what only the heartbeat sends.
    model_name: str
    model_sha256: str

    @classmethod
    def of(cls, worker: CameraWorker, state: str, now: float) -> CameraSnapshot:
        """``now`` is ``time.monotonic()``, read once for all cameras of one report."""
        reader = worker.reader
        gate = worker.pipeline.gate
        return cls(
            camera=worker.camera.id,
            state=state,
            frames_in=reader.frames_in,
            frames_decoded=reader.frames_decoded,
            samples=worker.samples,
            # Without a scene gate every sample is detected.
            detected=gate.counts.detected if gate is not None else worker.samples,
            gated=gate.counts.gated if gate is not None else 0,
            detect_fps=worker.samples / max(1e-6, now - worker.started_monotonic),
            decode_seconds=worker.decode_seconds,
            inference_seconds=worker.detector.seconds,
            reconnects=reader.reconnects,
            seconds_since_frame=reader.seconds_since_frame(now),
            model_name=worker.detector.model_name,
            model_sha256=worker.detector.model_sha256,
        )

    def heartbeat_figures(self) -> CameraFigures:
        """The camera's entry in the heartbeat (the wire contract's ``CameraFigures``)."""
        return CameraFigures(
            state=self.state,
            frames_in=self.frames_in,
            frames_decoded=self.frames_decoded,
            samples=self.samples,
            # Three decimals on the wire; /metrics exports the unrounded figure.
            detect_fps=round(self.detect_fps, 3),
            reconnects=self.reconnects,
            seconds_since_frame=self.seconds_since_frame,
            model=ModelRef(name=self.model_name, sha256=self.model_sha256),
        )
