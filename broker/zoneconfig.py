"""Zones and the rules one camera is watched by: the zone configuration (each kind's defaults,
hazard and sampling come from its spec in ``broker.zonekinds``), active hours, the scene gate, and
``CameraRules`` (the file given to ``edge replay``)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from broker.configbase import Id, StrictModel, require_unique
from broker.payloads import HazardKind
from broker.zonekinds import KIND_ONLY_OPTIONS, ZONE_KINDS, ZoneKind, ZoneKindSpec, kinds_with_option

# COCO has no e-bike: its motorcycle and bicycle stand in for one. A model trained with an `ebike`
# class (`sharpeyes models train`) tells e-bikes from other two-wheelers, so for such a model a zone
# that lists both stand-ins (the e-bike zone) reacts to `ebike` instead: a pedal bicycle in the lift
# is then no alarm. A zone listing one of them among others (a motorcycle in a fire lane) keeps it
# and reacts to `ebike` as well.
EBIKE = "ebike"
EBIKE_STAND_INS = frozenset({"motorcycle", "bicycle"})


def labels_for_model(labels: list[str] | tuple[str, ...], model_classes: tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
    """The detector labels a zone with LABELS reacts to when its camera runs a model with MODEL_CLASSES."""
    if EBIKE not in model_classes or not EBIKE_STAND_INS.intersection(labels):
        return tuple(labels)
    kept = [label for label in labels if label not in EBIKE_STAND_INS] if EBIKE_STAND_INS <= set(labels) else list(labels)
    return tuple(dict.fromkeys([*kept, EBIKE]))


# An open episode is kept by the same object down to this share of min_score (hysteresis).
KEEP_SCORE_RATIO = 0.6
# A camera with no zones (health watch only) still samples now and then.
IDLE_DETECT_FPS = 1.0
IDLE_DETECT_WIDTH = 640

_WINDOW_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def cadence_for(zones: list[ZoneConfig]) -> float:
    """The detect fps a camera needs for these zones: the fastest of their profiles."""
    return max((z.spec.sampling.detect_fps for z in zones), default=IDLE_DETECT_FPS)


def detect_width_for(zones: list[ZoneConfig]) -> int:
    """The detector input a camera needs for these zones: the widest of their profiles."""
    return max((z.spec.sampling.detect_width for z in zones), default=IDLE_DETECT_WIDTH)


def keyframes_suffice(zones: list[ZoneConfig]) -> bool:
    """Whether keyframes alone (about one a second) are enough for these zones: every kind says so."""
    return bool(zones) and all(z.spec.sampling.keyframes_suffice for z in zones)


def parse_time_window(text: str) -> tuple[dt.time, dt.time]:
    """"HH:MM-HH:MM" (24-hour, local time) as (start, end); end before start crosses midnight."""
    m = _WINDOW_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time window; write it as HH:MM-HH:MM, e.g. \"22:00-06:00\"")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    for h, mm in ((h1, m1), (h2, m2)):
        if h > 23 or mm > 59:
            raise ValueError(f"{text!r}: {h:02d}:{mm:02d} is not a time of day; hours go 00-23 and minutes 00-59")
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time; to watch all day leave active_hours out")
    return start, end


class TrackEvidence(StrictModel):
    """Track-level evidence (presence zones, off unless set): one object seen in the zone in the last
    ``samples`` samples whose scores add up to ``min_total`` opens an episode even if no single
    sample reaches ``min_score``. A partly hidden e-bike the detector keeps seeing at 0.25-0.3 is
    still an e-bike; a single weak box is not enough."""

    samples: int = Field(5, ge=2, le=50, description="how many consecutive samples the scores are added over")
    min_total: float = Field(1.25, gt=0, description="the sum of the object's scores over those samples "
                             "(a sample it was missed in adds 0) that opens an episode")


class ZoneConfig(StrictModel):
    id: Id
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(description="vertices [x, y] normalised to 0..1")
    dwell_s: float | None = Field(None, ge=0)
    clear_s: float | None = Field(None, ge=0)
    realarm_s: float | None = Field(None, gt=0)
    min_score: float = Field(0.35, ge=0.0, le=1.0)
    keep_score: float | None = Field(
        None, ge=0.0, le=1.0, description="once an episode is open, the same object (track or place) keeps it open "
        "down to this score, so a score that dips below min_score does not end it; default 0.6 x min_score")
    labels: list[str] | None = None
    name: str | None = Field(None, max_length=80, description="shown in evidence titles, e.g. crowd gathering")
    min_count: int | None = Field(None, ge=1, description="objects needed at once (indoor, occupancy; default 1)")
    active_hours: list[str] | None = Field(
        None, description='local-time windows "HH:MM-HH:MM" (may cross midnight); outside them the zone is idle'
    )
    track_evidence: TrackEvidence | None = Field(
        None, description="indoor, occupancy: let one object's scores over consecutive samples open an episode "
        "(off when absent); docs/zones.md")
    actuators: list[Id] = Field(default_factory=list, description="ids of the edge's actuators this zone holds "
                                "while its hazard lasts (door hold, voice warning); docs/actuation.md")

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(points) < 3:
            raise ValueError("a zone polygon needs at least 3 points [x, y]")
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(
                    f"point [{x}, {y}] is outside 0..1; coordinates are fractions of the image "
                    "width and height"
                )
        poly = Polygon(points)
        if not poly.is_valid:
            raise ValueError(
                f"polygon is not simple ({explain_validity(poly)}); list its corners in order "
                "around the edge so that no two sides cross"
            )
        if poly.area <= 0:
            raise ValueError("polygon has no area; its points must not all lie on one line")
        return points

    @field_validator("active_hours")
    @classmethod
    def _valid_windows(cls, windows: list[str] | None) -> list[str] | None:
        if windows is not None:
            if not windows:
                raise ValueError("active_hours is empty; list at least one window such as \"22:00-06:00\" or leave it out")
            for window in windows:
                parse_time_window(window)
        return windows

    @field_validator("actuators")
    @classmethod
    def _actuators_once(cls, actuators: list[str]) -> list[str]:
        require_unique(actuators, "actuator")
        return actuators

    @field_validator("labels")
    @classmethod
    def _some_labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None and not labels:
            raise ValueError("labels is empty, so the zone could never alarm; list the labels to watch, e.g. [person]")
        return labels

    @model_validator(mode="after")
    def _fill_defaults(self) -> ZoneConfig:
        spec = self.spec
        for option in KIND_ONLY_OPTIONS:
            if getattr(self, option) is not None and option not in spec.options:
                kinds = kinds_with_option(option)
                raise ValueError(
                    f"{option} applies only to zones of kind {' or '.join(kinds)}, not {self.kind}; remove {option}"
                )
        if self.labels is None and spec.labels is None:
            raise ValueError(
                f"labels is required for kind {self.kind}: add e.g. labels: [person] (the detector's class names to count)"
            )
        if self.dwell_s is None:
            self.dwell_s = spec.dwell_s
        if self.clear_s is None:
            self.clear_s = spec.clear_s
        if self.realarm_s is None:
            self.realarm_s = spec.realarm_s
        if self.labels is None:
            self.labels = list(spec.labels or ())
        if self.keep_score is None:
            self.keep_score = round(KEEP_SCORE_RATIO * self.min_score, 4)
        elif self.keep_score > self.min_score:
            raise ValueError(f"keep_score {self.keep_score} is above min_score {self.min_score}; it keeps an open "
                             "episode alive with weaker detections, so it must be at most min_score")
        if self.track_evidence is not None:
            evidence = self.track_evidence
            if evidence.min_total <= self.min_score:
                raise ValueError(f"track_evidence.min_total {evidence.min_total} is not above min_score {self.min_score}, "
                                 "so one weak detection alone would open an episode; set min_total above min_score, "
                                 f"e.g. {round(evidence.samples * self.min_score * 0.7, 2)}")
            if evidence.min_total > evidence.samples:
                raise ValueError(f"track_evidence.min_total {evidence.min_total} can never be reached: scores are at "
                                 f"most 1, so {evidence.samples} samples add up to at most {evidence.samples}; "
                                 "lower min_total or raise samples")
        if self.min_count is None and "min_count" in spec.options:
            self.min_count = 1
        return self

    @property
    def spec(self) -> ZoneKindSpec:
        """What this zone's kind is: hazard, defaults, rule, sampling (broker.zonekinds)."""
        return ZONE_KINDS[self.kind]

    @property
    def hazard(self) -> HazardKind:
        return self.spec.hazard

    def for_model(self, model_classes: tuple[str, ...]) -> ZoneConfig:
        """This zone as a camera running a model with MODEL_CLASSES applies it (labels_for_model)."""
        labels = labels_for_model(self.labels or (), model_classes)
        return self if list(labels) == list(self.labels or ()) else self.model_copy(update={"labels": list(labels)})

    def active_windows(self) -> list[tuple[dt.time, dt.time]]:
        """The parsed ``active_hours``; empty means always active."""
        return [parse_time_window(w) for w in self.active_hours or ()]


class SceneGateConfig(StrictModel):
    """Skip the detector while the zones look unchanged (edge/scene_gate.py)."""

    enabled: bool = True
    threshold: float = Field(10.0, gt=0, le=255, description="grey levels of change, in any 8x8 block of the zones' "
                             "area on a 96 px thumbnail, that count as a change and run the detector")
    max_skip_s: float | None = Field(None, gt=0, le=600, description="a full detection at least this often; default "
                                     "by the zones' kinds: fire lane 30 s, occupancy 5 s, indoor 3 s")


class CameraRules(StrictModel):
    """What the pipeline needs to watch one camera: the file given to ``edge replay``."""

    zones: list[ZoneConfig] = Field(default_factory=list)
    detect_fps: float | None = Field(
        None, gt=0, le=30, description="samples analysed per second; default: the fastest profile among the zones"
    )
    model: str = "yolov8n"
    detect_width: int | None = Field(
        None, ge=160, le=1280, multiple_of=32,
        description="long side of the detector input in pixels (Ultralytics models); default: the widest profile "
        "among the zones (480 for fire lanes, 640 otherwise); raise it for small, distant objects",
    )
    timezone: str | None = Field(
        None, description="IANA zone for active_hours, e.g. Asia/Shanghai; default: the edge machine's local zone"
    )
    scene_gate: SceneGateConfig = Field(default_factory=SceneGateConfig)

    @field_validator("zones")
    @classmethod
    def _unique_zone_ids(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        require_unique([z.id for z in zones], "zone id")
        return zones

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str | None) -> str | None:
        if name is not None:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None
        return name

    @model_validator(mode="after")
    def _fill_cadence(self) -> CameraRules:
        # Always set after validation: an explicit detect_fps wins, else the zones' profiles decide.
        if self.detect_fps is None:
            self.detect_fps = cadence_for(self.zones)
        if self.detect_width is None:
            self.detect_width = detect_width_for(self.zones)
        return self

    def tzinfo(self) -> dt.tzinfo | None:
        """The zone that active_hours are read in; None means the machine's local zone."""
        return ZoneInfo(self.timezone) if self.timezone else None
