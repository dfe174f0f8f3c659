"""ByteTrack per camera (edge.tracking) and the fire-lane rule fed by it.

Detection sequences are recorded the way the detector reports them: pixel boxes in a 1280x720
frame, one list per sample at the camera's detect cadence (1 fps, as for fire lanes).
"""

from __future__ import annotations

from broker.zoneconfig import ZoneConfig
from edge.pipeline import to_zone_objects
from edge.rules import FireLaneRule, RuleEvent, ZoneObject
from edge.tracking import Tracker
from models.detector import Detection

W, H = 1280, 720
LANE = ZoneConfig(
    id="lane", kind="fire_lane", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)],
    dwell_s=10, clear_s=5, realarm_s=30,
)
PARKED = (500.0, 420.0, 628.0, 500.0)  # 128 x 80 px, footprint (0.45, 0.69) inside the lane


def car(box=PARKED, score: float = 0.8, label: str = "car") -> Detection:
    return Detection(label=label, class_id=2, score=score, box=box)


def wobble(box, i: int, px: float = 1.5):
    """A parked car's box is never exactly the same twice: a pixel or two of detector noise."""
    d = px * ((i * 7) % 3 - 1)
    return (box[0] + d, box[1] - d, box[2] - d, box[3] + d)


def moved(box, dx: float, dy: float = 0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def track(samples: dict[float, list[Detection]], fps: float = 1.0) -> dict[float, list[Detection]]:
    tracker = Tracker(fps)
    return {t: tracker.update(t, samples[t]) for t in sorted(samples)}


def through_rule(tracked: dict[float, list[Detection]], zone: ZoneConfig = LANE) -> list[RuleEvent]:
    rule = FireLaneRule(zone)
    events: list[RuleEvent] = []
    for t in sorted(tracked):
        events.extend(rule.step(t, to_zone_objects(tracked[t], W, H)))
    return events


def phases(events: list[RuleEvent]) -> list[tuple[str, float]]:
    return [(e.phase.value, e.t) for e in events]


def ids_of(detections: list[Detection]) -> list[int | None]:
    return [d.track_id for d in detections]


def test_tracker_is_configured_for_the_cameras_cadence() -> None:
    slow, fast = Tracker(1.0), Tracker(5.0)
    # Several missed samples are bridged at any cadence, and never less than 5 s.
    assert slow.bridge_s == 10.0 and fast.bridge_s == 5.0
    assert slow.detect_fps == 1.0 and fast.detect_fps == 5.0


def test_ids_keep_order_and_survive_three_missed_samples() -> None:
    samples = {float(t): [car(wobble(PARKED, t))] for t in range(0, 12)}
    for t in (4, 5, 6):
        samples[float(t)] = []
    person = Detection(label="person", class_id=0, score=0.9, box=(100.0, 300.0, 140.0, 420.0))
    samples[8.0] = [person, car(wobble(PARKED, 8))]
    tracked = track(samples)

    assert ids_of(tracked[0.0]) == [None]  # confirmed on its second sighting
    parked_id = tracked[1.0][0].track_id
    assert parked_id is not None
    for t in (1, 2, 3, 7, 9, 10, 11):
        assert ids_of(tracked[float(t)]) == [parked_id]
    # Same detections, same order, only the id added: the person (first seen) has none yet.
    assert [(d.label, d.box) for d in tracked[8.0]] == [(person.label, person.box), ("car", samples[8.0][1].box)]
    assert ids_of(tracked[8.0]) == [None, parked_id]


def test_a_score_dip_below_bytetracks_split_keeps_the_id() -> None:
    samples = {float(t): [car(wobble(PARKED, t), score=0.8 if t < 5 else 0.27)] for t in range(0, 10)}
    tracked = track(samples)
    assert len({d.track_id for t in range(1, 10) for d in tracked[float(t)]}) == 1
    # A car first seen at dusk (never above 0.3) never starts a track of its own.
    dusk = track({float(t): [car(score=0.27)] for t in range(0, 5)})
    assert all(d.track_id is None for ds in dusk.values() for d in ds)


def test_the_cameras_clock_going_back_or_repeating_keeps_the_ids() -> None:
    tracker = Tracker(1.0)
    other = car(moved(PARKED, 400.0))
    for t in range(0, 3):
        parked_id, other_id = ids_of(tracker.update(float(t), [car(), other]))
    assert parked_id is not None and other_id is not None and parked_id != other_id
    # A reconnect restarts the stream's clock at 0: the cars still standing keep their ids,
    # and no id is handed out again to something else.
    assert ids_of(tracker.update(0.0, [car(), other])) == [parked_id, other_id]
    assert ids_of(tracker.update(0.0, [car(), other])) == [parked_id, other_id]  # a repeated timestamp
    newcomer = car(moved(PARKED, -300.0))
    tracker.update(1.0, [car(), newcomer])
    (_, newcomer_id) = ids_of(tracker.update(2.0, [car(), newcomer]))
    assert newcomer_id not in (None, parked_id, other_id)


def test_parked_car_missed_for_three_samples_is_one_episode() -> None:
    samples = {float(t): [car(wobble(PARKED, t))] for t in range(0, 50)}
    for t in (12, 13, 14, 25, 26, 27):  # lost twice, three samples each time
        samples[float(t)] = []
    events = through_rule(track(samples))
    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    assert {e.episode for e in events} == {1} and {e.started_t for e in events} == {0.0}
    (start_obj,), (update_obj,) = events[0].objects, events[1].objects
    assert start_obj.track_id is not None and update_obj.track_id == start_obj.track_id


def test_parked_car_whose_score_drops_at_dusk_is_one_episode() -> None:
    samples = {float(t): [car(wobble(PARKED, t), score=0.8 if t < 15 else 0.3)] for t in range(0, 50)}
    events = through_rule(track(samples))
    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    assert events[1].objects[0].track_id == events[0].objects[0].track_id
    assert events[1].score == 0.3


def test_a_car_driving_past_a_parked_one_takes_neither_its_place_nor_its_episode() -> None:
    samples: dict[float, list[Detection]] = {}
    for t in range(0, 61):
        parked = car(wobble(PARKED, t))
        # The passing car drives along the lane at 40 px per sample, a little lower in the
        # picture, half overlapping the parked one from t=22 to t=28; at t=25 it hides it.
        passing = car(moved(PARKED, 40.0 * (t - 25), 30.0), score=0.9)
        samples[float(t)] = [parked]
        if 18 <= t <= 32:
            samples[float(t)] = [passing] if t == 25 else [parked, passing]
    tracked = track(samples)
    events = through_rule(tracked)

    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    parked_ids = {o.track_id for e in events for o in e.objects}
    assert len(parked_ids) == 1 and None not in parked_ids
    # The passing car is never reported: it never stood still in the lane.
    assert all(abs(o.box[0] - PARKED[0] / W) < 0.01 for e in events for o in e.objects)


def test_the_place_wins_over_swapped_tracker_ids() -> None:
    """A tracker can swap the ids of a parked car and one driving past it, and then lose the
    parked car behind it. Its dwell and episode must survive both."""
    lane_box = (0.40, 0.60, 0.50, 0.70)

    def obj(box, track_id: int, score: float = 0.8) -> ZoneObject:
        return ZoneObject("car", score, box, track_id)

    rule = FireLaneRule(LANE)
    events: list[RuleEvent] = []
    for t in range(0, 50):
        passing = (0.10 + 0.03 * t, 0.64, 0.20 + 0.03 * t, 0.74)
        if t < 12:
            objects = [obj(lane_box, 3)]
        elif t < 14:
            objects = [obj(lane_box, 3), obj(passing, 8)]
        elif t < 16:
            objects = [obj(lane_box, 8), obj(passing, 3)]  # the ids swapped
        elif t < 19:
            objects = [obj(passing, 3)]  # the parked car hidden behind the passing one
        else:
            objects = [obj(lane_box, 8)]
        events.extend(rule.step(float(t), objects))
    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    assert events[0].started_t == 0.0
    assert [o.box for e in events for o in e.objects] == [lane_box, lane_box]
    assert events[0].objects[0].track_id == events[1].objects[0].track_id == 3
