"""``fire_lane_blocked``: a vehicle standing still in a fire lane for ``dwell_s``.

Identity here means "the same vehicle in the same place". Each track is anchored where it was
first seen; a detection that overlaps a track but has moved off its anchor by more than a
fraction of the vehicle's own size starts a new track instead. So traffic driving through
is a string of short-lived tracks that never reach the dwell, while a parked car keeps one
track (and its dwell) through detector misses, score dips and cars passing beside it.

Tracker ids (``ZoneObject.track_id``, from ``edge.tracking``) are used where they help: they
re-find a parked car first, and they tell a vehicle that moved (same id, off its anchor, nothing
left on the anchor) from a second vehicle. The anchor stays the final word on "stationary".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from broker.payloads import Phase
from broker.zoneconfig import ZoneConfig
from edge.geometry import Box, Point, box_size, footprint, greedy_match, iou, point_in_polygon
from edge.rules.types import Episode, RuleEvent, ZoneObject


@dataclass(slots=True)
class _Track:
    id: int
    label: str
    score: float
    box: Box
    anchor: Point
    anchor_size: tuple[float, float]
    since: float
    last_seen: float
    samples: int
    first_step: int
    external_id: int | None
    shown_id: int | None = None

    def moved(self, box: Box, fraction: float, resize_fraction: float) -> bool:
        fx, fy = footprint(box)
        w, h = self.anchor_size
        if abs(fx - self.anchor[0]) > fraction * w or abs(fy - self.anchor[1]) > fraction * h:
            return True
        # A vehicle driving towards or away from the camera grows or shrinks while its footprint
        # hardly moves, or cannot move at all when the box is cut off by the frame's bottom edge.
        bw, bh = box_size(box)
        return abs(bw - w) > resize_fraction * w or abs(bh - h) > resize_fraction * h

    def as_object(self, tracker_fed: bool) -> ZoneObject:
        # Fed by a tracker, the id shown is the first one the tracker gave this vehicle, so that
        # evidence keeps one id per vehicle stay even when the tracker later re-numbers it (the
        # rule's own numbers would collide with the tracker's); without a tracker, the rule's own
        # numbers still tell vehicles apart.
        shown = self.shown_id if tracker_fed else self.id
        return ZoneObject(self.label, self.score, self.box, shown)


class FireLaneRule:
    """Pure state machine; feed it one detection sample at a time with ``step``."""

    def __init__(
        self,
        zone: ZoneConfig,
        *,
        grace_s: float = 10.0,
        move_fraction: float = 0.25,
        resize_fraction: float = 0.35,
        match_iou: float = 0.3,
        min_presence: float = 0.5,
    ) -> None:
        """``grace_s``: how long a vehicle the detector lost is remembered (its dwell kept).
        ``move_fraction``: how far (in its own box widths/heights) a vehicle may shift and still
        count as standing; ``resize_fraction``: how much its box may grow or shrink (relative to
        its size when it stopped) and still count as standing. A known vehicle stays tracked while
        its score is above the zone's ``keep_score``; only scores above ``min_score`` create vehicles.
        ``min_presence``: the share of samples since a vehicle appeared in which it must have
        been seen to alarm; a spot that traffic merely crosses now and then is not a parked car.
        """
        self.zone = zone
        self.zone_id = zone.id
        self.hazard = zone.hazard
        self._polygon = [(float(x), float(y)) for x, y in zone.polygon]
        self._labels = frozenset(zone.labels or ())
        self._dwell = float(zone.dwell_s or 0.0)
        self._clear = float(zone.clear_s or 0.0)
        self._realarm = float(zone.realarm_s or 0.0)
        self._grace = grace_s
        self._move = move_fraction
        self._resize = resize_fraction
        self._match_iou = match_iou
        self._keep_score = zone.keep_score if zone.keep_score is not None else zone.min_score
        self._min_presence = min_presence
        self._step = 0
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._episode: Episode | None = None
        self._episodes = 0
        self._tracker_fed = False

    def _candidates(self, detections: list[ZoneObject]) -> list[ZoneObject]:
        return [
            d
            for d in detections
            if d.label in self._labels
            and d.score >= self._keep_score
            and point_in_polygon(footprint(d.box), self._polygon)
        ]

    def _associate(self, t: float, candidates: list[ZoneObject]) -> None:
        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= self._grace]
        free_tracks = set(range(len(self._tracks)))
        free_dets = set(range(len(candidates)))
        matched: list[tuple[int, int]] = []

        def in_place(ti: int, di: int) -> bool:
            return not self._tracks[ti].moved(candidates[di].box, self._move, self._resize)

        # 1. The tracker's id is the best evidence of identity, but only where the detection
        # still stands on the track's anchor: next to parked cars a tracker can swap the ids of
        # a parked car and one driving past, and the place must win over the id.
        for di, det in enumerate(candidates):
            if det.track_id is None:
                continue
            for ti in sorted(free_tracks):
                if self._tracks[ti].external_id == det.track_id and in_place(ti, di):
                    matched.append((ti, di))
                    free_tracks.discard(ti)
                    free_dets.discard(di)
                    break

        # 2. Overlap, again only in place: a shifted detection is another vehicle, or this one leaving.
        rows, cols = sorted(free_tracks), sorted(free_dets)
        overlaps = [
            [iou(self._tracks[r].box, candidates[c].box) if in_place(r, c) else 0.0 for c in cols] for r in rows
        ]
        for r, c in greedy_match(overlaps, self._match_iou):
            matched.append((rows[r], cols[c]))
            free_tracks.discard(rows[r])
            free_dets.discard(cols[c])

        for ti, di in matched:
            track, det = self._tracks[ti], candidates[di]
            track.box, track.score, track.label = det.box, det.score, det.label
            track.last_seen = t
            track.samples += 1
            self._adopt_id(track, det.track_id)

        # 3. Nothing stands on the anchor of a track whose tracker id now shows up elsewhere: the
        # vehicle itself moved, so it is driving and its dwell starts again where it is now.
        for ti in sorted(free_tracks):
            track = self._tracks[ti]
            if track.external_id is None:
                continue
            moved_to = next((d for d in sorted(free_dets) if candidates[d].track_id == track.external_id), None)
            if moved_to is not None:
                self._reanchor(track, candidates[moved_to], t)
                free_dets.discard(moved_to)

        for di in sorted(free_dets):
            if candidates[di].score >= self.zone.min_score:
                track = self._new_track(candidates[di], t)
                self._tracks.append(track)
                self._adopt_id(track, candidates[di].track_id)

    def _adopt_id(self, track: _Track, external_id: int | None) -> None:
        """Follow the tracker's current id for a vehicle (it may first give none, or re-number it);
        an id belongs to one vehicle at a time."""
        if external_id is None or external_id == track.external_id:
            return
        for other in self._tracks:
            if other.external_id == external_id:
                other.external_id = None
        track.external_id = external_id
        if track.shown_id is None:
            track.shown_id = external_id

    def _new_track(self, det: ZoneObject, t: float) -> _Track:
        track = _Track(
            id=self._next_id,
            label=det.label,
            score=det.score,
            box=det.box,
            anchor=footprint(det.box),
            anchor_size=box_size(det.box),
            since=t,
            last_seen=t,
            samples=1,
            first_step=self._step,
            external_id=None,
        )
        self._next_id += 1
        return track

    def _reanchor(self, track: _Track, det: ZoneObject, t: float) -> None:
        track.box, track.score, track.label = det.box, det.score, det.label
        track.anchor, track.anchor_size = footprint(det.box), box_size(det.box)
        track.since = track.last_seen = t
        track.samples = 1
        track.first_step = self._step

    def _present_enough(self, track: _Track) -> bool:
        return track.samples >= self._min_presence * (self._step - track.first_step + 1)

    @property
    def watching(self) -> bool:
        # Every vehicle remembered in the lane is a dwell being timed, standing or not yet.
        return bool(self._tracks) or self._episode is not None

    def step(self, t: float, detections: list[ZoneObject], local_time: dt.time | None = None) -> list[RuleEvent]:
        """``local_time`` is accepted for the common rule interface; fire lanes watch all day."""
        self._step += 1
        self._tracker_fed = self._tracker_fed or any(d.track_id is not None for d in detections)
        self._associate(t, self._candidates(detections))
        seen = [tr for tr in self._tracks if tr.last_seen == t]
        # Standing: seen at least twice in the same place (a single sighting could be a car
        # passing through), or already past the dwell (dwell 0 alarms on first sight).
        standing = [tr for tr in seen if tr.samples >= 2 or t - tr.since >= self._dwell]
        blocking = [tr for tr in standing if t - tr.since >= self._dwell and self._present_enough(tr)]

        episode = self._episode
        if episode is None:
            if not blocking:
                return []
            self._episodes += 1
            started = min(tr.since for tr in blocking)
            self._episode = Episode(self._episodes, started, t, t)
            return [self._event(Phase.START, t, blocking)]

        if standing:
            episode.last_present_t = t
            if episode.due_update(t, self._realarm):
                episode.last_emit_t = t
                return [self._event(Phase.UPDATE, t, blocking or standing)]
            return []
        if t - episode.last_present_t >= self._clear:
            event = self._event(Phase.END, t, [])
            self._episode = None
            return [event]
        return []

    def _event(self, phase: Phase, t: float, tracks: list[_Track]) -> RuleEvent:
        assert self._episode is not None
        objects = tuple(tr.as_object(self._tracker_fed) for tr in sorted(tracks, key=lambda tr: tr.id))
        return self._episode.event(self.hazard, self.zone_id, phase, t, objects)
