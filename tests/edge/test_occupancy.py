"""``zone_occupancy`` by configuration alone: counts, dwell and active hours, as a pure rule.

Samples are 1 s apart (the occupancy profile's cadence); local times are given per sample the
way the pipeline gives them (the wall clock in the camera's time zone).
"""

from __future__ import annotations

import datetime as dt

import pytest

from broker.payloads import HazardKind, Phase
from broker.zoneconfig import ZoneConfig
from edge.rules import PresenceRule, RuleEvent, ZoneObject, rule_for_zone
from edge.rules.hours import in_any_window, in_window

YARD = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]


def person(x: float = 0.5, score: float = 0.8, y: float = 0.8, label: str = "person") -> ZoneObject:
    return ZoneObject(label, score, (x - 0.02, y - 0.2, x + 0.02, y))


def people(n: int, **kw) -> list[ZoneObject]:
    return [person(0.05 + 0.09 * i, **kw) for i in range(n)]


def zone(**kw) -> ZoneConfig:
    return ZoneConfig(**({"id": "yard", "kind": "occupancy", "polygon": YARD, "labels": ["person"]} | kw))


def run(rule, samples: dict[float, list[ZoneObject]], clock: dict[float, dt.time] | None = None) -> list[RuleEvent]:
    events: list[RuleEvent] = []
    for t in sorted(samples):
        events.extend(rule.step(t, samples[t], clock[t] if clock else None))
    return events


def phases(events: list[RuleEvent]) -> list[tuple[str, float]]:
    return [(e.phase.value, e.t) for e in events]


def local_clock(start: str, seconds: range, step_s: float = 1.0) -> dict[float, dt.time]:
    """Local time of day for each sample, starting at ``start`` (HH:MM:SS), crossing midnight as it may."""
    base = dt.datetime.combine(dt.date(2026, 5, 4), dt.time.fromisoformat(start))
    return {float(t): (base + dt.timedelta(seconds=t * step_s)).time() for t in seconds}


CROWD = zone(name="crowd gathering", min_count=5, dwell_s=10, clear_s=5, realarm_s=60)


def test_a_crowd_is_min_count_people_for_the_dwell() -> None:
    assert CROWD.hazard is HazardKind.ZONE_OCCUPANCY and isinstance(rule_for_zone(CROWD), PresenceRule)
    samples = {float(t): people(4) for t in range(0, 20)}  # four people chatting: no crowd
    samples |= {float(t): people(6) for t in range(20, 45)}
    samples |= {float(t): people(2) for t in range(45, 60)}
    events = run(PresenceRule(CROWD), samples)
    assert phases(events) == [("start", 30.0), ("end", 49.0)]
    start = events[0]
    assert start.hazard is HazardKind.ZONE_OCCUPANCY and start.started_t == 20.0 and len(start.objects) == 6
    assert events[1].objects == ()


def test_only_the_configured_labels_inside_the_zone_above_min_score_count() -> None:
    outside = [person(0.1 + 0.1 * i, y=0.3) for i in range(5)]  # standing above the yard
    bikes = people(5, label="bicycle")
    weak = people(5, score=0.2)
    samples = {float(t): outside + bikes + weak + people(4) for t in range(0, 40)}
    assert run(PresenceRule(CROWD), samples) == []
    samples = {float(t): outside + people(5) for t in range(0, 40)}
    assert phases(run(PresenceRule(CROWD), samples)) == [("start", 10.0)]


def test_dwell_tolerates_one_short_sample_but_restarts_after_two() -> None:
    samples = {float(t): people(5) for t in range(0, 30)}
    samples[4.0] = people(4)  # someone hidden behind another for one sample
    assert phases(run(PresenceRule(CROWD), samples)) == [("start", 10.0)]
    samples[5.0] = people(3)
    assert phases(run(PresenceRule(CROWD), samples)) == [("start", 16.0)]


def test_a_crowd_that_stays_realarms_and_a_new_one_is_a_new_episode() -> None:
    samples = {float(t): people(7) for t in range(0, 80)}
    samples |= {float(t): [] for t in range(80, 90)}
    samples |= {float(t): people(5) for t in range(90, 101)}
    events = run(PresenceRule(CROWD), samples)
    assert phases(events) == [("start", 10.0), ("update", 70.0), ("end", 84.0), ("start", 100.0)]
    assert [e.episode for e in events] == [1, 1, 1, 2]


NIGHT = zone(name="night intrusion", active_hours=["22:00-06:00"], dwell_s=2, clear_s=5)


@pytest.mark.parametrize(
    ("now", "window", "inside"),
    [
        ("21:59", "22:00-06:00", False),
        ("22:00", "22:00-06:00", True),
        ("23:59", "22:00-06:00", True),
        ("00:00", "22:00-06:00", True),
        ("05:59", "22:00-06:00", True),
        ("06:00", "22:00-06:00", False),  # the end is exclusive
        ("12:00", "22:00-06:00", False),
        ("08:30", "08:00-18:00", True),
        ("18:00", "08:00-18:00", False),
        ("07:59", "08:00-18:00", False),
    ],
)
def test_windows_may_cross_midnight(now: str, window: str, inside: bool) -> None:
    (parsed,) = zone(active_hours=[window]).active_windows()
    assert in_window(dt.time.fromisoformat(now), parsed) is inside


def test_no_windows_means_always_and_several_windows_any() -> None:
    assert in_any_window(dt.time(3, 0), [])
    windows = zone(active_hours=["12:00-13:00", "22:00-06:00"]).active_windows()
    assert [in_any_window(dt.time(h, 30), windows) for h in (3, 9, 12, 15, 23)] == [True, False, True, False, True]


def test_night_intrusion_alarms_after_dark_across_midnight_and_not_by_day() -> None:
    intruder = {float(t): [person()] for t in range(0, 600)}  # ten minutes, 23:55 to 00:05
    events = run(PresenceRule(NIGHT), intruder, local_clock("23:55:00", range(0, 600)))
    # One episode, not cut at midnight (00:00 is t=300); re-alarmed after the default 300 s.
    assert phases(events) == [("start", 2.0), ("update", 302.0)]
    assert {e.episode for e in events} == {1} and events[0].objects[0].label == "person"
    # The same person in the afternoon is a visitor.
    assert run(PresenceRule(NIGHT), intruder, local_clock("14:00:00", range(0, 600))) == []


def test_the_episode_ends_when_the_window_closes_and_nothing_is_watched_after() -> None:
    # Someone is there from 05:58 until well after 06:00, when the night window closes.
    samples = {float(t): [person()] for t in range(0, 400)}
    events = run(PresenceRule(NIGHT), samples, local_clock("05:58:00", range(0, 400)))
    assert phases(events) == [("start", 2.0), ("end", 120.0)]
    assert events[1].phase is Phase.END and events[1].episode == events[0].episode == 1


def test_the_dwell_starts_when_the_window_opens() -> None:
    samples = {float(t): [person()] for t in range(0, 200)}
    events = run(PresenceRule(NIGHT), samples, local_clock("21:59:00", range(0, 200)))
    assert phases(events) == [("start", 62.0)]  # the window opens at t=60, dwell 2 s
    assert events[0].started_t == 60.0


def test_active_hours_need_the_local_time() -> None:
    with pytest.raises(ValueError, match="local_time"):
        PresenceRule(NIGHT).step(0.0, [person()])
    # A zone without active hours does not need it.
    assert PresenceRule(CROWD).step(0.0, people(5)) == []


def test_ebike_zones_keep_their_defaults() -> None:
    indoor = ZoneConfig(id="car", kind="indoor", polygon=YARD)
    assert indoor.min_count == 1 and indoor.active_hours is None and indoor.active_windows() == []
    assert indoor.labels == ["motorcycle", "bicycle"]
