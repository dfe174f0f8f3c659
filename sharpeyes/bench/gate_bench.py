"""The scene-change gate on recorded footage: each shared clip replayed through the camera pipeline
with the gate off and on, in the same run: CPU, detector runs, and whether the events are the same."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from broker.siteconfig import load_camera_rules
from broker.zoneconfig import SceneGateConfig
from edge.replay import replay
from models.detector import Detection, Detector

# (clip in ../shared/media, camera configuration in configs/cameras): what each clip shows.
CASES = (
    ("street_parked_cars_720p.mp4", "street-parked.yaml"),  # parked cars in a fire lane
    ("elevator_escooter_20s.mp4", "elevator.yaml"),  # an e-scooter wheeled into a lift
    ("indoor_people_walking.mp4", "indoor-occupancy.yaml"),  # people coming and going
    ("parking_lot_traffic.mp4", "parking-lot.yaml"),  # cars driving through a lot
)


@dataclass(frozen=True, slots=True)
class GateFigures:
    clip: str
    events: int
    same_events: bool
    cpu_off_s: float
    cpu_on_s: float
    samples: int
    detections_on: int

    @property
    def ratio(self) -> float:
        return self.cpu_on_s / self.cpu_off_s if self.cpu_off_s else float("nan")


class CountingDetector:
    """The detector, counting its runs (the replay takes any object with ``detect``)."""

    def __init__(self, inner: Detector) -> None:
        self.inner, self.runs = inner, 0
        self.model_name, self.model_sha256 = inner.model_name, inner.model_sha256
        self.class_names = inner.class_names

    def detect(self, frame_bgr: np.ndarray, input_width: int | None = None) -> list[Detection]:
        self.runs += 1
        return self.inner.detect(frame_bgr, input_width)


def measure(media: Path, configs: Path, detector: Detector) -> list[GateFigures]:
    base = datetime(2026, 12, 1, tzinfo=UTC)
    out = []
    for clip, config in CASES:
        events: dict[bool, list[tuple[object, ...]]] = {}
        cpu: dict[bool, float] = {}
        runs: dict[bool, int] = {}
        for enabled in (False, True):
            rules = load_camera_rules(configs / config)
            rules = rules.model_copy(update={"scene_gate": SceneGateConfig(enabled=enabled)})
            counting = CountingDetector(detector)
            start = time.process_time()
            events[enabled] = [(e["hazard"], e["phase"], e.get("zone"), e["t"])
                               for e in replay(media / clip, rules, detector=counting, start_wall=base)]
            cpu[enabled], runs[enabled] = time.process_time() - start, counting.runs
        out.append(GateFigures(clip, len(events[True]), events[True] == events[False], cpu[False], cpu[True],
                               runs[False], runs[True]))
    return out
