"""What rules consume and produce. Pure data; coordinates normalised to 0..1."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from broker.payloads import HazardKind, Phase
from edge.geometry import Box


@dataclass(frozen=True, slots=True)
class ZoneObject:
    """One detection as the rules see it: box normalised to the frame, optional tracker id."""

    label: str
    score: float
    box: Box
    track_id: int | None = None


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A phase of one hazard episode, on the camera's clock.

    ``episode`` numbers the rule's episodes (1, 2, ...); the pipeline turns it into the
    incident key. ``started_t`` is when the condition began (e.g. when the car stopped), which
    is earlier than the ``start`` event by the dwell time.
    """

    hazard: HazardKind
    zone: str
    phase: Phase
    episode: int
    started_t: float
    t: float
    score: float
    objects: tuple[ZoneObject, ...]


class Rule(Protocol):
    """A zone's rule. ``local_time`` is the sample's local time of day (for active hours);
    rules that do not use it accept and ignore it, so the pipeline treats every rule alike."""

    zone_id: str
    hazard: HazardKind

    def step(self, t: float, detections: list[ZoneObject], local_time: dt.time | None = None) -> list[RuleEvent]: ...

    @property
    def watching(self) -> bool:
        """Something is being timed towards an alarm, or an episode is open: the camera's evidence
        (main) stream must be open, so that the alarm's clip has its seconds before the alarm."""
        ...


@dataclass(slots=True)
class Episode:
    """Bookkeeping of one open episode: when it began and when it last told anyone."""

    number: int
    started_t: float
    last_emit_t: float
    last_present_t: float

    def due_update(self, t: float, realarm_s: float) -> bool:
        return t - self.last_emit_t >= realarm_s

    def event(self, hazard: HazardKind, zone: str, phase: Phase, t: float, objects: tuple[ZoneObject, ...]) -> RuleEvent:
        """This episode's event at ``t``; its score is the best of the objects that caused it."""
        return RuleEvent(
            hazard=hazard,
            zone=zone,
            phase=phase,
            episode=self.number,
            started_t=self.started_t,
            t=t,
            score=max((o.score for o in objects), default=0.0),
            objects=objects,
        )
