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
"""

from __future__ import annotations

import datetime as dt

from broker.payloads import Phase
from broker.zoneconfig import ZoneConfig
from edge.geometry import Box, footprint, iou, point_in_polygon
from edge.rules.hours import in_any_window
from edge.rules.types import Episode, RuleEvent, ZoneObject

SAME_PLACE_IOU = 0.3  # a weaker box this close to a strong one of the episode is the same object


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
        if self._episode is not None:
            found += [d for d in inside if self._keep <= d.score < self.zone.min_score and self._seen_strong(d)]
        present = len(found) >= self._min_count
        self._remember_strong(found)
        if present:
            self._missed = 0
            if self._since is None:
                self._since = t
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

    def _remember_strong(self, found: list[ZoneObject]) -> None:
        strong = [d for d in found if d.score >= self.zone.min_score]
        if strong:
            self._strong_ids.update(d.track_id for d in strong if d.track_id is not None)
            self._strong_boxes = [d.box for d in strong]

    def _idle(self, t: float) -> list[RuleEvent]:
        # Outside the active hours nothing is watched, so an open episode cannot be kept open:
        # nobody would ever see it clear. It ends when the window closes.
        self._since = None
        self._missed = 0
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
