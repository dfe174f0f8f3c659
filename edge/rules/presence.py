"""Presence of enough qualifying objects in a zone for ``dwell_s``: ``ebike_indoor`` and
``zone_occupancy``.

Both are the same question asked with different settings: "are at least ``min_count``
objects with these labels inside the polygon, and have they been for ``dwell_s``?". An e-bike
indoors is one object of label motorcycle/bicycle; a crowd is five people; a night intrusion
is one person, asked only during ``active_hours``. The object itself is the hazard wherever it
stands, so no identity or motion is needed, and short detector misses are tolerated.

Hysteresis: an episode starts on ``min_score``, but once open it is kept by weaker detections
(down to ``keep_score``) of the objects that opened it: the tracker's identity, or a box on the
same place. A parked e-bike whose score wavers around ``min_score`` stays one episode and ends
only when nothing of it has been seen for ``clear_s``; a new, weak object never opens one.

Track-level evidence (``track_evidence``, off unless the zone sets it): a weak object may open an
episode after all when the same object (tracker id, or a box on the same place) keeps being seen,
its scores over the last ``samples`` samples adding up to ``min_total``. Its dwell counts from the
first of those samples: the sightings are the evidence that it was there.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field

from broker.payloads import Phase
from broker.zoneconfig import TrackEvidence, ZoneConfig
from edge.geometry import Box, footprint, iou, point_in_polygon
from edge.rules.hours import in_any_window
from edge.rules.types import Episode, RuleEvent, ZoneObject

SAME_PLACE_IOU = 0.3  # a weaker box this close to a strong one of the episode is the same object


@dataclass
class _Chain:
    """One object's recent sightings in the zone: (t, score) per sample, 0.0 where it was missed."""

    box: Box
    track_id: int | None
    scores: deque[tuple[float, float]] = field(default_factory=deque)


class EvidenceChains:
    """Per object in the zone, the sum of its scores over the last ``samples`` samples.

    Weak detections often have no tracker id (the tracker starts tracks only at 0.3, and names one
    on its second sighting), so an object is followed by its id where it has one, else by its box:
    the chain whose last box overlaps it at ``SAME_PLACE_IOU``. Pure; one ``update`` per sample.
    """

    def __init__(self, evidence: TrackEvidence) -> None:
        self._samples = evidence.samples
        self._min_total = evidence.min_total
        self._chains: list[_Chain] = []

    def update(self, t: float, objects: list[ZoneObject]) -> dict[int, float]:
        """Feed one sample's objects (in the zone, of the zone's labels); returns, by index into
        OBJECTS, the ones whose chain now has enough evidence, with when their evidence began."""
        seen: set[int] = set()
        qualified: dict[int, float] = {}
        for index, obj in sorted(enumerate(objects), key=lambda io: -io[1].score):
            chain = self._chain_of(obj, seen)
            if chain is None:
                chain = _Chain(obj.box, obj.track_id)
                self._chains.append(chain)
            seen.add(id(chain))
            chain.box = obj.box
            chain.track_id = obj.track_id if obj.track_id is not None else chain.track_id
            chain.scores.append((t, obj.score))
            since = self._evidence_since(chain)
            if since is not None:
                qualified[index] = since
        for chain in self._chains:
            if id(chain) not in seen:
                chain.scores.append((t, 0.0))
        for chain in self._chains:
            while len(chain.scores) > self._samples:
                chain.scores.popleft()
        # An object missed for the whole window has nothing left to add up: forget it.
        self._chains = [c for c in self._chains if any(score > 0 for _, score in c.scores)]
        return qualified

    def clear(self) -> None:
        self._chains = []

    def _chain_of(self, obj: ZoneObject, taken: set[int]) -> _Chain | None:
        free = [c for c in self._chains if id(c) not in taken]
        if obj.track_id is not None:
            for chain in free:
                if chain.track_id == obj.track_id:
                    return chain
        best = max(free, key=lambda c: iou(obj.box, c.box), default=None)
        return best if best is not None and iou(obj.box, best.box) >= SAME_PLACE_IOU else None

    def _evidence_since(self, chain: _Chain) -> float | None:
        if sum(score for _, score in chain.scores) < self._min_total:
            return None
        return next(t for t, score in chain.scores if score > 0)


class PresenceRule:
    """Pure state machine; feed it one detection sample at a time with ``step``."""

    def __init__(self, zone: ZoneConfig, *, max_missed: int = 1) -> None:
        """``max_missed``: consecutive samples short of ``min_count`` that do not interrupt the dwell."""
        self.zone = zone
        self.zone_id = zone.id
        self.hazard = zone.hazard
        self._polygon = [(float(x), float(y)) for x, y in zone.polygon]
        self._labels = frozenset(zone.labels or ())
        self._min_count = zone.min_count or 1
        self._windows = zone.active_windows()
        self._dwell = float(zone.dwell_s or 0.0)
        self._clear = float(zone.clear_s or 0.0)
        self._realarm = float(zone.realarm_s or 0.0)
        self._max_missed = max_missed
        self._keep = zone.keep_score if zone.keep_score is not None else zone.min_score
        # The strong objects of the open episode: tracker ids, and their latest boxes (same place).
        self._strong_ids: set[int] = set()
        self._strong_boxes: list[Box] = []
        self._since: float | None = None
        self._missed = 0
        self._episode: Episode | None = None
        self._episodes = 0
        self._evidence = EvidenceChains(zone.track_evidence) if zone.track_evidence is not None else None

    @property
    def watching(self) -> bool:
        return self._since is not None or self._episode is not None

    def step(self, t: float, detections: list[ZoneObject], local_time: dt.time | None = None) -> list[RuleEvent]:
        """``local_time``: the sample's local wall time of day, needed only with active hours."""
        if self._windows:
            if local_time is None:
                raise ValueError(f"zone {self.zone_id!r} has active_hours; step() needs local_time")
            if not in_any_window(local_time, self._windows):
                return self._idle(t)

        inside = [d for d in detections
                  if d.label in self._labels and point_in_polygon(footprint(d.box), self._polygon)]
        found = [d for d in inside if d.score >= self.zone.min_score]
        evidence_since: float | None = None
        if self._evidence is not None:
            # Weak objects with enough evidence count as strong ones: they may open an episode.
            qualified = self._evidence.update(t, inside)
            weak = {i: since for i, since in qualified.items() if inside[i].score < self.zone.min_score}
            found += [inside[i] for i in weak]
            evidence_since = min(weak.values(), default=None)
        strong = list(found)
        if self._episode is not None:
            found += [d for d in inside if self._keep <= d.score < self.zone.min_score and self._seen_strong(d)
                      and d not in strong]
        present = len(found) >= self._min_count
        self._remember_strong(strong)
        if present:
            self._missed = 0
            if self._since is None:
                self._since = t if evidence_since is None else min(t, evidence_since)
        else:
            self._missed += 1
            if self._missed > self._max_missed and self._episode is None:
                self._since = None
                self._strong_ids.clear()
                self._strong_boxes = []

        episode = self._episode
        if episode is None:
            if present and self._since is not None and t - self._since >= self._dwell:
                self._episodes += 1
                self._episode = Episode(self._episodes, self._since, t, t)
                return [self._event(Phase.START, t, found)]
            return []
        if present:
            episode.last_present_t = t
            if episode.due_update(t, self._realarm):
                episode.last_emit_t = t
                return [self._event(Phase.UPDATE, t, found)]
            return []
        if t - episode.last_present_t >= self._clear:
            return self._end(t)
        return []

    def _seen_strong(self, d: ZoneObject) -> bool:
        if d.track_id is not None and d.track_id in self._strong_ids:
            return True
        return any(iou(d.box, box) >= SAME_PLACE_IOU for box in self._strong_boxes)

    def _remember_strong(self, strong: list[ZoneObject]) -> None:
        if strong:
            self._strong_ids.update(d.track_id for d in strong if d.track_id is not None)
            self._strong_boxes = [d.box for d in strong]

    def _idle(self, t: float) -> list[RuleEvent]:
        # Outside the active hours nothing is watched, so an open episode cannot be kept open:
        # nobody would ever see it clear. It ends when the window closes.
        self._since = None
        self._missed = 0
        if self._evidence is not None:
            self._evidence.clear()
        return self._end(t) if self._episode is not None else []

    def _end(self, t: float) -> list[RuleEvent]:
        event = self._event(Phase.END, t, [])
        self._episode = None
        self._since = None
        self._strong_ids.clear()
        self._strong_boxes = []
        return [event]

    def _event(self, phase: Phase, t: float, objects: list[ZoneObject]) -> RuleEvent:
        assert self._episode is not None
        ordered = tuple(sorted(objects, key=lambda o: -o.score))
        return self._episode.event(self.hazard, self.zone_id, phase, t, ordered)
