"""``ebike_indoor``: an e-bike (by label) inside an indoor zone for ``dwell_s``.

Indoors the object itself is the hazard wherever it stands, so no identity or motion is
needed: presence of any qualifying object, tolerating short detector misses.
"""

from __future__ import annotations

from broker.payloads import Phase
from broker.siteconfig import ZoneConfig
from edge.geometry import footprint, point_in_polygon
from edge.rules.types import Episode, RuleEvent, ZoneObject


class PresenceRule:
    """Pure state machine; feed it one detection sample at a time with ``step``."""

    def __init__(self, zone: ZoneConfig, *, max_missed: int = 1) -> None:
        """``max_missed``: consecutive empty samples that do not interrupt the dwell."""
        self.zone = zone
        self.zone_id = zone.id
        self.hazard = zone.hazard
        self._polygon = [tuple(p) for p in zone.polygon]
        self._labels = frozenset(zone.labels or ())
        self._dwell = float(zone.dwell_s or 0.0)
        self._clear = float(zone.clear_s or 0.0)
        self._realarm = float(zone.realarm_s or 0.0)
        self._max_missed = max_missed
        self._since: float | None = None
        self._missed = 0
        self._episode: Episode | None = None
        self._episodes = 0

    def step(self, t: float, detections: list[ZoneObject]) -> list[RuleEvent]:
        found = [
            d
            for d in detections
            if d.label in self._labels
            and d.score >= self.zone.min_score
            and point_in_polygon(footprint(d.box), self._polygon)
        ]
        if found:
            self._missed = 0
            if self._since is None:
                self._since = t
        else:
            self._missed += 1
            if self._missed > self._max_missed and self._episode is None:
                self._since = None

        episode = self._episode
        if episode is None:
            if found and self._since is not None and t - self._since >= self._dwell:
                self._episodes += 1
                self._episode = Episode(self._episodes, self._since, t, t)
                return [self._event(Phase.START, t, found)]
            return []
        if found:
            episode.last_present_t = t
            if episode.due_update(t, self._realarm):
                episode.last_emit_t = t
                return [self._event(Phase.UPDATE, t, found)]
            return []
        if t - episode.last_present_t >= self._clear:
            event = self._event(Phase.END, t, [])
            self._episode = None
            self._since = None
            return [event]
        return []

    def _event(self, phase: Phase, t: float, objects: list[ZoneObject]) -> RuleEvent:
        assert self._episode is not None
        ordered = tuple(sorted(objects, key=lambda o: -o.score))
        return RuleEvent(
            hazard=self.hazard,
            zone=self.zone_id,
            phase=phase,
            episode=self._episode.number,
            started_t=self._episode.started_t,
            t=t,
            score=max((o.score for o in ordered), default=0.0),
            objects=ordered,
        )
