"""What each zone kind is, in one place: the hazard it raises, its defaults, the labels it reacts
to, the options only it takes, the rule that watches it, how its camera is sampled, and its title.

Adding a kind means adding it to ``ZoneKind`` and one ``ZoneKindSpec`` to ``ZONE_KINDS``, then a
rule to ``edge.rules.RULES`` if it needs a new one (a test checks every kind has a rule).

The three names of a kind differ on purpose, and this is where they meet:

============  =====================  ==============  ===================================
zone kind     hazard (on the wire)   rule            why the names differ
============  =====================  ==============  ===================================
fire_lane     fire_lane_blocked      fire_lane       the hazard is the lane *blocked*
indoor        ebike_indoor           presence        the kind says where, the hazard what
occupancy     zone_occupancy         presence        presence: "are N of these in here?"
============  =====================  ==============  ===================================

The zone kind is a site-file value and the hazard a wire value, so neither is renamed; the
rule names the question the edge asks (``FireLaneRule``, ``PresenceRule`` in ``edge/rules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from broker.payloads import HazardKind

ZoneKind = Literal["fire_lane", "indoor", "occupancy"]


class RuleName(StrEnum):
    """The edge rule that watches a kind. A name, not a class: broker may not import edge, which
    maps each name to its class in ``edge.rules.RULES``."""

    FIRE_LANE = "fire_lane"  # edge.rules.fire_lane.FireLaneRule: a vehicle standing still
    PRESENCE = "presence"  # edge.rules.presence.PresenceRule: at least min_count objects present


@dataclass(frozen=True, slots=True)
class SamplingProfile:
    """How a zone kind wants its camera sampled.

    ``detect_fps`` is the cadence used when the camera config gives none; ``fps_range`` is
    what the hazard was designed for (documentation and the benchmark's yardstick, not a
    limit). A static hazard such as a parked car needs one look a second or less, which is
    also what lets the reader decode keyframes only (``keyframes_suffice``); an e-bike wheeled
    into an elevator is in view for a few seconds, so it needs 2-5 looks.

    ``detect_width`` is the long side of the detector's input (Ultralytics exports are fitted
    to it, see models/reanchor.py). A vehicle blocking a fire lane is one of the largest things
    in view, and 480 px finds the parked cars of the shared street and parking-lot clips as
    well as 640 does, for a third of the square 640 inference; people and e-bikes keep 640.

    ``max_skip_s``: the scene gate (edge/scene_gate.py) runs a full detection at least this
    often: a parked car matters after minutes, an e-bike wheeled into a lift within seconds.
    """

    detect_fps: float
    fps_range: tuple[float, float]
    max_skip_s: float
    detect_width: int = 640
    keyframes_suffice: bool = False


@dataclass(frozen=True, slots=True)
class ZoneKindSpec:
    """One zone kind. ``labels`` None: the site file must list them (occupancy counts whatever
    it is told to). ``options``: the kind-only options (``KIND_ONLY_OPTIONS``) it implements."""

    kind: ZoneKind
    hazard: HazardKind
    rule: RuleName
    title: str  # Chinese first with English beside it, as the console shows incidents
    dwell_s: float
    clear_s: float
    realarm_s: float
    labels: tuple[str, ...] | None
    options: frozenset[str]
    sampling: SamplingProfile

    @property
    def defaults(self) -> tuple[float, float, float]:
        """(dwell_s, clear_s, realarm_s) when the zone gives none."""
        return self.dwell_s, self.clear_s, self.realarm_s


# Options that only some kinds implement, in the order they are checked; setting one on a kind
# without it is refused, since the kind's rule would silently ignore it.
KIND_ONLY_OPTIONS: tuple[str, ...] = ("min_count", "active_hours", "track_evidence")

ZONE_KINDS: dict[ZoneKind, ZoneKindSpec] = {
    "fire_lane": ZoneKindSpec(
        kind="fire_lane", hazard=HazardKind.FIRE_LANE_BLOCKED, rule=RuleName.FIRE_LANE,
        title="消防通道占用 Fire lane blocked",
        dwell_s=120.0, clear_s=30.0, realarm_s=300.0,
        labels=("car", "truck", "bus", "motorcycle"), options=frozenset(),
        sampling=SamplingProfile(detect_fps=1.0, fps_range=(0.5, 1.0), max_skip_s=30.0, detect_width=480,
                                 keyframes_suffice=True),
    ),
    "indoor": ZoneKindSpec(
        kind="indoor", hazard=HazardKind.EBIKE_INDOOR, rule=RuleName.PRESENCE,
        title="电动车进楼 E-bike indoors",
        dwell_s=2.0, clear_s=10.0, realarm_s=300.0,
        # COCO has no e-bike: motorcycle and bicycle stand in for one (zoneconfig.labels_for_model).
        labels=("motorcycle", "bicycle"), options=frozenset(KIND_ONLY_OPTIONS),
        sampling=SamplingProfile(detect_fps=2.0, fps_range=(2.0, 5.0), max_skip_s=3.0),
    ),
    "occupancy": ZoneKindSpec(
        kind="occupancy", hazard=HazardKind.ZONE_OCCUPANCY, rule=RuleName.PRESENCE,
        title="区域占用 Zone occupancy",
        dwell_s=10.0, clear_s=10.0, realarm_s=300.0,
        # No default on purpose: what it counts (people, vehicles, bicycles...) is the whole point
        # of its configuration.
        labels=None, options=frozenset(KIND_ONLY_OPTIONS),
        sampling=SamplingProfile(detect_fps=1.0, fps_range=(1.0, 1.0), max_skip_s=5.0),
    ),
}

# Hazards that belong to a camera rather than a zone (edge/camera_watch.py).
CAMERA_HAZARD_TITLES: dict[HazardKind, str] = {
    HazardKind.CAMERA_OFFLINE: "摄像头离线 Camera offline",
    HazardKind.CAMERA_TAMPERED: "摄像头遮挡 Camera tampered",
}
# Every hazard's human title, keyed by its wire value.
HAZARD_TITLES: dict[str, str] = {
    **{spec.hazard.value: spec.title for spec in ZONE_KINDS.values()},
    **{hazard.value: title for hazard, title in CAMERA_HAZARD_TITLES.items()},
}


def kinds_with_option(option: str) -> tuple[ZoneKind, ...]:
    """The kinds that implement a kind-only OPTION, in ``ZONE_KINDS`` order."""
    return tuple(kind for kind, spec in ZONE_KINDS.items() if option in spec.options)
