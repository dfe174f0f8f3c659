"""What a camera worker needs from the node that runs it, and nothing more.

The worker is written against this protocol rather than against ``EdgeNode`` so that the import
graph runs one way (node -> worker) and a test or a bench can host a worker with a stub."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from broker.payloads import HazardEvent
from broker.siteconfig import SiteConfig
from edge.actuators.hub import ActuatorHub
from edge.camera import HealthChange
from edge.evidence import EvidenceBlob
from edge.evidence_finisher import EvidenceFinisher
from edge.inference_gate import InferenceGate


class WorkerHost(Protocol):
    # Read once when the worker is built (a new configuration builds new workers).
    @property
    def site(self) -> SiteConfig: ...

    @property
    def edge_id(self) -> str: ...

    @property
    def state_dir(self) -> Path: ...

    # Shared by every camera of the node: detections queue here for a slot.
    @property
    def inference_gate(self) -> InferenceGate: ...

    # Shared by every camera of the node: the evidence that follows alarms is finished here, in turn.
    @property
    def evidence_finisher(self) -> EvidenceFinisher: ...

    # Read at every alarm rather than kept: the node owns the hub, and may have none.
    @property
    def actuators(self) -> ActuatorHub | None: ...

    def next_seq(self) -> int:
        """The edge's next event sequence number (persistent across restarts)."""
        ...

    def enqueue(self, event: HazardEvent, blobs: list[EvidenceBlob]) -> None:
        """Write an event and its evidence to the outbox, blobs first, atomically."""
        ...

    def on_health(self, change: HealthChange) -> None:
        """The camera's stream went online or offline."""
        ...

    def on_tamper(self, camera_id: str, cause: str | None) -> None:
        """The camera's view was covered or moved (``cause``), or is clear again (None)."""
        ...
