"""One camera's pipeline: sample frames, detect, track, run the zone rules, build contract events.

The pipeline is the same for live RTSP (``edge.node``) and for ``edge replay``; both feed it
frames with the camera's own clock ``t`` (seconds) and the wall-clock time of the frame.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from broker.payloads import DetectedObject, EvidenceRef, HazardEvent, ModelRef, Phase
from broker.zoneconfig import CameraRules, ZoneConfig, cadence_for
from edge.episodes import episode_start, incident_key
from edge.evidence import Annotation, EvidenceBlob, annotated_snapshot
from edge.geometry import normalise_box
from edge.rules import Rule, RuleEvent, ZoneObject, rule_for_zone
from edge.scene_gate import SceneGate
from edge.tracking import Tracker
from models.detector import Detection, Detector


@dataclass(frozen=True)
class Emission:
    event: HazardEvent
    blobs: list[EvidenceBlob] = field(default_factory=list)
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class _OpenIncident:
    key: str
    started_at: datetime


def to_zone_objects(detections: list[Detection], width: int, height: int) -> list[ZoneObject]:
    return [ZoneObject(d.label, d.score, normalise_box(d.box, width, height), d.track_id) for d in detections]


class CameraPipeline:
    def __init__(
        self,
        *,
        site: str,
        edge: str,
        camera_id: str,
        rules: CameraRules,
        detector: Detector,
        next_seq: Callable[[], int],
        gb28181_channel_id: str | None = None,
        early_share: float = 0.0,
    ) -> None:
        """``early_share``: how much of a sample period early a frame may come and still be taken.
        A keyframe-only camera whose GOP equals the period delivers its keyframes a few ms either
        side of the due time; without slack every early one is skipped and the cadence halves."""
        self.site, self.edge, self.camera_id = site, edge, camera_id
        self.rules = rules
        self.detector = detector
        self._next_seq = next_seq
        self._channel = gb28181_channel_id
        self.detect_fps = rules.detect_fps or cadence_for(rules.zones)
        self._period = 1.0 / self.detect_fps
        # A millisecond at least: container timestamps are rounded, so a 1 fps schedule on a
        # 15 fps clip would otherwise slip one frame late at every sample.
        self._early_s = max(1e-3, early_share * self._period)
        self._tz = rules.tzinfo()
        # A model with an `ebike` class changes what the e-bike zones react to (labels_for_model).
        classes = tuple(getattr(detector, "class_names", ()))
        self._zones: dict[str, ZoneConfig] = {z.id: z.for_model(classes) for z in rules.zones}
        self._rules: list[Rule] = [rule_for_zone(z) for z in self._zones.values()]
        self.tracker = Tracker(self.detect_fps)
        self._open: dict[tuple[str, int], _OpenIncident] = {}
        self._next_due: float | None = None
        self._last_t: float | None = None
        self.gate = SceneGate(rules.scene_gate, rules.zones) if rules.scene_gate.enabled else None
        self._last_detections: list[Detection] = []

    def needs_detection(self, frame_bgr: np.ndarray, t: float) -> bool:
        """False when the scene gate says the zones are unchanged since the last detection."""
        return self.gate is None or self.gate.needs_detection(frame_bgr, t)

    def watching(self) -> bool:
        """Whether any zone's rule is timing something towards an alarm or has an episode open."""
        return any(rule.watching for rule in self._rules)

    def due(self, t: float) -> bool:
        """Whether the frame at camera time ``t`` should be analysed (sampling at detect_fps)."""
        if self._next_due is None or self._last_t is None or t < self._last_t:
            return True  # first frame, or the camera's clock restarted (a reconnect)
        return t >= self._next_due - self._early_s

    def _advance(self, t: float) -> None:
        if self._next_due is None or self._last_t is None or t < self._last_t or t - self._next_due >= self._period:
            self._next_due = t + self._period  # start, restart, or fell behind: re-base on now
        else:
            self._next_due += self._period
        self._last_t = t

    def process(self, frame_bgr: np.ndarray, t: float, wall: datetime,
                after_detect: Callable[[], None] | None = None, detect: bool | None = None) -> list[Emission]:
        """Analyse one frame; returns the hazard events it raised (usually none).

        ``after_detect`` runs as soon as the detector is done (the edge hands its detection slot
        on there, so that tracking, rules and evidence snapshots do not hold it). ``detect``: run
        the detector (True) or let the rules see the last detections again (False); None asks
        the scene gate (``needs_detection``).
        """
        if wall.tzinfo is None:
            raise ValueError("wall must be timezone-aware (UTC)")
        if detect is None:
            detect = self.needs_detection(frame_bgr, t)
        self._advance(t)
        h, w = frame_bgr.shape[:2]
        if detect:
            try:
                detections = self.detector.detect(frame_bgr, self.rules.detect_width)
            finally:
                if after_detect is not None:
                    after_detect()
            self._last_detections = detections
            if self.gate is not None:
                self.gate.analysed(frame_bgr, t)
        else:
            # Detections are frozen and the tracker returns new ones: the list can be seen again as is.
            detections = self._last_detections
            if self.gate is not None:
                self.gate.reused()
        objects = to_zone_objects(self.tracker.update(t, detections), w, h)
        # Active hours are local wall time where the camera is, not the camera's clock.
        local_time = wall.astimezone(self._tz).time()
        emissions = []
        for rule in self._rules:
            for rule_event in rule.step(t, objects, local_time):
                emissions.append(self._emit(rule_event, frame_bgr, wall))
        return emissions

    def _emit(self, ev: RuleEvent, frame_bgr: np.ndarray, wall: datetime) -> Emission:
        wall = wall.astimezone(UTC)
        slot = (ev.zone, ev.episode)
        incident = self._open.get(slot)
        if incident is None:
            # Fix the start once on the wall clock: recomputing it from camera time at each
            # update would drift with the clock and break the incident key.
            started_at = episode_start(wall, ev.t, ev.started_t)
            key = incident_key(self.site, self.edge, self.camera_id, ev.zone, ev.hazard, started_at)
            incident = _OpenIncident(key, started_at)
            self._open[slot] = incident
        if ev.phase == Phase.END:
            del self._open[slot]

        blobs: list[EvidenceBlob] = []
        if ev.phase != Phase.END:
            zone = self._zones[ev.zone]
            annotations = [Annotation(o.box, f"{o.label} {o.score:.2f}") for o in ev.objects]
            what = f"{zone.name} ({ev.hazard.value})" if zone.name else ev.hazard.value
            title = f"{what} {ev.phase.value} {self.camera_id}/{ev.zone} {wall:%Y-%m-%d %H:%M:%S}Z"
            blobs.append(annotated_snapshot(frame_bgr, zone.polygon, annotations, title=title))

        event = HazardEvent(
            event_id=uuid.uuid4(),
            incident_key=incident.key,
            hazard=ev.hazard,
            phase=ev.phase,
            site=self.site,
            edge=self.edge,
            camera=self.camera_id,
            zone=ev.zone,
            started_at=incident.started_at,
            observed_at=wall,
            seq=self._next_seq(),
            score=min(1.0, max(0.0, ev.score)),
            objects=[DetectedObject(label=o.label, score=o.score, box=o.box, track_id=o.track_id) for o in ev.objects],
            evidence=[EvidenceRef(sha256=b.sha256, content_type=b.content_type, bytes=len(b.data)) for b in blobs],
            model=ModelRef(name=self.detector.model_name, sha256=self.detector.model_sha256),
            gb28181_channel_id=self._channel,
        )
        return Emission(event=event, blobs=blobs, t=ev.t)
