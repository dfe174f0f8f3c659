"""The hazard rules as pure state machines over synthetic detection sequences.

Times are seconds on the camera clock; samples are 1 s apart for fire lanes and 0.5 s for
indoor zones, as configured in the demo.
"""

from __future__ import annotations

from broker.payloads import HazardKind, Phase
from broker.zoneconfig import ZoneConfig
from broker.zonekinds import ZONE_KINDS, RuleName
from edge.rules import RULES, FireLaneRule, PresenceRule, RuleEvent, ZoneObject, rule_for_zone

LANE = ZoneConfig(
    id="lane", kind="fire_lane", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)],
    dwell_s=10, clear_s=5, realarm_s=30,
)
PARKED = (0.40, 0.60, 0.50, 0.70)


def car(box=PARKED, score: float = 0.8, track_id: int | None = None, label: str = "car") -> ZoneObject:
    return ZoneObject(label, score, box, track_id)


def jitter(box, i: int, amount: float = 0.002):
    """Detector noise: a parked car's box wobbles by a pixel or two from frame to frame."""
    d = amount * ((i * 7) % 3 - 1)
    return (box[0] + d, box[1] - d, box[2] - d, box[3] + d)


def shifted(box, dx: float, dy: float = 0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def run(rule, samples: dict[float, list[ZoneObject]]) -> list[RuleEvent]:
    events: list[RuleEvent] = []
    for t in sorted(samples):
        events.extend(rule.step(t, samples[t]))
    return events


def phases(events: list[RuleEvent]) -> list[tuple[str, float]]:
    return [(e.phase.value, e.t) for e in events]


def test_parked_car_alarms_once_at_dwell_realarms_and_ends_after_clear() -> None:
    samples = {float(t): [car(jitter(PARKED, t))] for t in range(0, 71)}
    samples |= {float(t): [] for t in range(71, 90)}
    events = run(FireLaneRule(LANE), samples)
    assert phases(events) == [("start", 10.0), ("update", 40.0), ("update", 70.0), ("end", 75.0)]
    assert {e.episode for e in events} == {1} and {e.started_t for e in events} == {0.0}
    start = events[0]
    assert start.hazard is HazardKind.FIRE_LANE_BLOCKED and start.zone == "lane"
    assert [o.label for o in start.objects] == ["car"] and start.score == 0.8
    assert events[-1].objects == ()


def test_a_second_parking_is_a_new_episode() -> None:
    samples = {float(t): [car()] for t in range(0, 15)}
    samples |= {float(t): [] for t in range(15, 25)}
    samples |= {float(t): [car()] for t in range(25, 40)}
    events = run(FireLaneRule(LANE), samples)
    assert phases(events) == [("start", 10.0), ("end", 19.0), ("start", 35.0)]
    assert [e.episode for e in events] == [1, 1, 2]


def test_cars_driving_through_never_alarm() -> None:
    samples: dict[float, list[ZoneObject]] = {}
    for t in range(0, 120):
        # Steady traffic: a new car enters every 4 s and crosses at 0.05 per second (half its
        # length per sample), plus one crawling at 0.008 per second (under a tenth of its length per sample).
        cars = [car(shifted((0.0, 0.60, 0.1, 0.70), 0.05 * (t - start))) for start in range(t - 19, t + 1) if start % 4 == 0]
        cars.append(car(shifted((0.0, 0.80, 0.1, 0.90), 0.008 * t)))
        samples[float(t)] = cars
    assert run(FireLaneRule(LANE), samples) == []


def test_stopping_after_driving_counts_the_dwell_from_the_stop() -> None:
    samples = {float(t): [car(shifted(PARKED, 0.05 * (t - 10)))] for t in range(0, 10)}
    samples |= {float(t): [car(PARKED)] for t in range(10, 30)}
    assert phases(run(FireLaneRule(LANE), samples)) == [("start", 20.0)]


def test_a_one_or_two_sample_miss_and_a_score_dip_keep_one_episode() -> None:
    samples = {float(t): [car(jitter(PARKED, t))] for t in range(0, 61)}
    for t in (4, 5, 20, 33, 34):  # the detector loses the car
        samples[float(t)] = []
    for t in (7, 8, 45, 46, 47):  # evening light: score below min_score (0.35), still the car
        samples[float(t)] = [car(PARKED, score=0.26)]
    events = run(FireLaneRule(LANE), samples)
    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    assert events[0].started_t == 0.0


def test_a_low_score_alone_never_creates_a_vehicle() -> None:
    samples = {float(t): [car(PARKED, score=0.3)] for t in range(0, 30)}
    assert run(FireLaneRule(LANE), samples) == []


def test_a_car_passing_a_parked_one_keeps_its_episode_and_identity() -> None:
    samples: dict[float, list[ZoneObject]] = {}
    for t in range(0, 61):
        objects = [car(jitter(PARKED, t))]
        if 20 <= t <= 30:
            # A car in the next lane drives past, half overlapping the parked car's box; at
            # t=25 it hides the parked car completely from the detector.
            passing = car(shifted(PARKED, 0.02 * (t - 25), 0.04), score=0.9)
            objects = [passing] if t == 25 else [objects[0], passing]
        samples[float(t)] = objects
    events = run(FireLaneRule(LANE), samples)
    assert phases(events) == [("start", 10.0), ("update", 40.0)]
    start_ids = {o.track_id for o in events[0].objects}
    assert len(start_ids) == 1 and {o.track_id for o in events[1].objects} == start_ids


def test_footprint_outside_the_zone_never_alarms() -> None:
    zone = ZoneConfig(id="box", kind="fire_lane", polygon=[(0.3, 0.3), (0.6, 0.3), (0.6, 0.6), (0.3, 0.6)], dwell_s=5)
    # A tall vehicle whose box covers the whole zone but stands below it.
    samples = {float(t): [car((0.35, 0.2, 0.55, 0.8), label="truck")] for t in range(0, 60)}
    assert run(FireLaneRule(zone), samples) == []
    # The same vehicle standing inside alarms: the zone itself works.
    samples = {float(t): [car((0.35, 0.2, 0.55, 0.5), label="truck")] for t in range(0, 60)}
    assert phases(run(FireLaneRule(zone), samples)) == [("start", 5.0)]


def test_people_and_other_labels_are_not_vehicles() -> None:
    samples = {float(t): [car(label="person"), car(shifted(PARKED, 0.2), label="bicycle")] for t in range(0, 30)}
    assert run(FireLaneRule(LANE), samples) == []


def test_tracker_ids_override_overlap() -> None:
    # With tracker ids, a vehicle that moved is the same vehicle, driving: its dwell restarts.
    samples = {float(t): [car(shifted(PARKED, 0.05 * (t % 2)), track_id=7)] for t in range(0, 30)}
    assert run(FireLaneRule(LANE), samples) == []
    samples = {float(t): [car(jitter(PARKED, t), track_id=7)] for t in range(0, 12)}
    events = run(FireLaneRule(LANE), samples)
    assert phases(events) == [("start", 10.0)] and events[0].objects[0].track_id == 7


def test_rules_are_deterministic() -> None:
    samples = {float(t): [car(jitter(PARKED, t)), car(shifted(PARKED, 0.03 * t, 0.1))] for t in range(0, 50)}
    assert run(FireLaneRule(LANE), samples) == run(FireLaneRule(LANE), samples)


ELEVATOR = ZoneConfig(id="car", kind="indoor", polygon=[(0.2, 0.6), (0.8, 0.6), (0.8, 1.0), (0.2, 1.0)])
SCOOTER = (0.35, 0.5, 0.65, 0.8)


def half_seconds(start: float, stop: float) -> list[float]:
    return [start + 0.5 * i for i in range(int((stop - start) / 0.5))]


def test_ebike_starts_after_dwell_tolerating_a_single_miss_and_ends_after_clear() -> None:
    assert (ELEVATOR.dwell_s, ELEVATOR.clear_s) == (2.0, 10.0)  # the design's indoor defaults
    samples = {t: [car(SCOOTER, 0.6, label="motorcycle")] for t in half_seconds(0, 8.5)}
    samples[1.0] = []  # one missed sample does not restart the dwell
    samples |= {t: [] for t in half_seconds(8.5, 25)}
    events = run(PresenceRule(ELEVATOR), samples)
    assert phases(events) == [("start", 2.0), ("end", 18.0)]
    assert events[0].hazard is HazardKind.EBIKE_INDOOR and events[0].objects[0].label == "motorcycle"
    assert events[0].started_t == 0.0 and events[1].phase is Phase.END


def test_ebike_dwell_restarts_after_two_misses() -> None:
    samples = {t: [car(SCOOTER, 0.6, label="bicycle")] for t in half_seconds(0, 8)}
    samples[1.0] = samples[1.5] = []
    assert phases(run(PresenceRule(ELEVATOR), samples)) == [("start", 4.0)]


def test_ebike_rule_ignores_people_and_bikes_outside_the_zone() -> None:
    outside = (0.0, 0.1, 0.15, 0.5)  # footprint (0.075, 0.5): left of and above the floor area
    samples = {t: [car(SCOOTER, 0.9, label="person"), car(outside, 0.9, label="motorcycle")] for t in half_seconds(0, 30)}
    assert run(PresenceRule(ELEVATOR), samples) == []


def test_ebike_realarms_while_it_stays() -> None:
    zone = ZoneConfig(id="car", kind="indoor", polygon=ELEVATOR.polygon, realarm_s=5)
    samples = {t: [car(SCOOTER, 0.6, label="motorcycle")] for t in half_seconds(0, 13)}
    assert phases(run(PresenceRule(zone), samples)) == [("start", 2.0), ("update", 7.0), ("update", 12.0)]


def test_rule_for_zone_picks_by_kind() -> None:
    assert isinstance(rule_for_zone(LANE), FireLaneRule)
    assert isinstance(rule_for_zone(ELEVATOR), PresenceRule)


def test_every_zone_kind_has_a_registered_rule() -> None:
    assert set(RULES) == set(RuleName)
    assert {spec.rule for spec in ZONE_KINDS.values()} <= set(RULES)
    assert RULES == {RuleName.FIRE_LANE: FireLaneRule, RuleName.PRESENCE: PresenceRule}
    for kind in ZONE_KINDS:
        zone = ZoneConfig(id="z", kind=kind, polygon=LANE.polygon, labels=["person"])
        assert isinstance(rule_for_zone(zone), RULES[zone.spec.rule])  # type: ignore[arg-type]


def test_a_vehicle_driving_towards_the_camera_is_not_standing() -> None:
    # Its box grows every sample while its footprint stays on the frame's bottom edge, where
    # the box is cut off: the footprint alone would call it parked.
    samples = {}
    for t in range(0, 30):
        top = max(0.55, 0.95 - 0.08 * (t % 6))  # one car after another, each approaching for 6 s
        samples[float(t)] = [car((0.35, top, 0.65, 1.0))]
    zone = ZoneConfig(id="lane", kind="fire_lane", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)], dwell_s=3)
    assert run(FireLaneRule(zone), samples) == []
    # A vehicle of steady size on the same spot does alarm: it is the growth that spares it.
    steady = {float(t): [car((0.35, 0.7, 0.65, 1.0))] for t in range(0, 30)}
    assert phases(run(FireLaneRule(zone), steady)) == [("start", 3.0)]


# -- hysteresis: an open episode is kept by weaker sightings of the same object ---------------------

FLICKER = [0.50, 0.31, 0.28, 0.33, 0.30, 0.29, 0.40, 0.27, 0.30, 0.26, 0.31, 0.29, 0.33, 0.28, 0.30, 0.29]  # around 0.35


def _flickering(zone: ZoneConfig, *, track_id: int | None = 4, box=SCOOTER) -> list[RuleEvent]:
    quick = zone.model_copy(update={"dwell_s": 0.0, "clear_s": 2.0})
    samples = {i * 0.5: [car(box, score, track_id=track_id, label="motorcycle")] for i, score in enumerate(FLICKER * 3)}
    samples |= {t: [] for t in half_seconds(len(FLICKER) * 1.5, len(FLICKER) * 1.5 + 5)}
    return run(PresenceRule(quick), samples)


def test_a_parked_ebike_whose_score_dips_below_min_score_stays_one_episode() -> None:
    assert ELEVATOR.min_score == 0.35 and ELEVATOR.keep_score == 0.21  # the default: 0.6 x min_score
    events = _flickering(ELEVATOR)
    assert [e.phase.value for e in events] == ["start", "end"]
    assert events[-1].t == len(FLICKER) * 1.5 - 0.5 + 2.0  # ends clear_s after the last sighting
    # Without a tracker id, the same place keeps it too.
    assert [e.phase.value for e in _flickering(ELEVATOR, track_id=None)] == ["start", "end"]


def test_without_hysteresis_the_same_footage_flickers_into_many_episodes() -> None:
    strict = ELEVATOR.model_copy(update={"keep_score": ELEVATOR.min_score})
    assert [e.phase.value for e in _flickering(strict)].count("start") >= 3


def test_a_weak_object_never_opens_an_episode_and_a_weak_stranger_does_not_keep_one() -> None:
    weak_only = {t: [car(SCOOTER, 0.3, label="motorcycle")] for t in half_seconds(0, 10)}
    assert run(PresenceRule(ELEVATOR), weak_only) == []
    elsewhere = (0.55, 0.70, 0.70, 0.90)  # inside the zone, but not where the e-bike stood
    samples = {t: [car(SCOOTER, 0.6, track_id=1, label="motorcycle")] for t in half_seconds(0, 4)}
    samples |= {t: [car(elsewhere, 0.3, track_id=2, label="motorcycle")] for t in half_seconds(4, 20)}
    events = run(PresenceRule(ELEVATOR.model_copy(update={"dwell_s": 1.0})), samples)
    assert phases(events)[-1] == ("end", 13.5)  # clear_s (10 s) after the strong one was last seen


def test_keep_score_above_min_score_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="keep_score 0.5 is above min_score 0.35"):
        ZoneConfig(id="car", kind="indoor", polygon=[(0, 0), (1, 0), (1, 1)], keep_score=0.5)
