"""Track-level evidence of the presence rule (``track_evidence``), on plain data: an object the
detector keeps seeing just under ``min_score`` opens an episode with the option and not without;
a single weak box never does; the option is checked where the site file is read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.zoneconfig import ZoneConfig
from edge.rules import PresenceRule, RuleEvent, ZoneObject
from edge.rules.presence import EvidenceChains

FLOOR = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
EBIKE_BOX = (0.35, 0.55, 0.53, 0.98)
EVIDENCE = {"samples": 5, "min_total": 1.25}


def zone(**kw: object) -> ZoneConfig:
    return ZoneConfig.model_validate({"id": "car-floor", "kind": "indoor", "polygon": FLOOR, "dwell_s": 2,
                                      "clear_s": 10, **kw})


def ebike(score: float, track_id: int | None = 7, box: tuple[float, float, float, float] = EBIKE_BOX) -> ZoneObject:
    return ZoneObject("motorcycle", score, box, track_id)


def run(rule: PresenceRule, samples: list[tuple[float, list[ZoneObject]]]) -> list[RuleEvent]:
    return [event for t, objects in samples for event in rule.step(t, objects)]


HOVERING = [0.27, 0.3, 0.25, 0.29, 0.28]  # a partly hidden e-bike: seen every sample, never at 0.35


def hovering(track_id: int | None = 7) -> list[tuple[float, list[ZoneObject]]]:
    """The weak object at 2 fps for 5 samples, then 10 s of it still hovering, as a parked e-bike would."""
    scores = HOVERING * 5
    return [(i * 0.5, [ebike(score, track_id)]) for i, score in enumerate(scores)]


def test_a_track_hovering_under_min_score_opens_an_episode_only_with_the_lever() -> None:
    assert run(PresenceRule(zone()), hovering()) == []  # the default: no single sample reaches 0.35
    events = run(PresenceRule(zone(track_evidence=EVIDENCE)), hovering())
    start = events[0]
    assert [e.phase.value for e in events] == ["start"]
    # 5 samples add up to 1.39 >= 1.25 at t=2.0; its dwell counts from the first of them.
    assert (start.t, start.started_t) == (2.0, 0.0)
    assert start.objects and start.objects[0].score == 0.28


def test_without_a_tracker_id_the_same_place_is_the_same_object() -> None:
    # The tracker gives no id below 0.3, so weak objects are followed by their box.
    events = run(PresenceRule(zone(track_evidence=EVIDENCE)), hovering(track_id=None))
    assert [(e.phase.value, e.t) for e in events] == [("start", 2.0)]


def test_a_single_spurious_weak_box_opens_nothing() -> None:
    samples = [(i * 0.5, [ebike(0.3)] if i == 4 else []) for i in range(40)]
    assert run(PresenceRule(zone(track_evidence=EVIDENCE)), samples) == []


def test_weak_boxes_in_different_places_do_not_add_up() -> None:
    # Five weak boxes, each somewhere else (a pram here, a bag there): no one object adds up to 1.25.
    places = [(0.05 + 0.18 * i, 0.6, 0.15 + 0.18 * i, 0.9) for i in range(5)]
    samples = [(i * 0.5, [ebike(0.3, None, places[i])]) for i in range(5)] + [(2.5 + i * 0.5, []) for i in range(10)]
    assert run(PresenceRule(zone(track_evidence=EVIDENCE)), samples) == []


def test_a_weak_object_seen_now_and_then_does_not_reach_the_total() -> None:
    # Seen in 2 of every 5 samples at 0.3: 0.6 per window, under 1.25 however long it lasts.
    samples = [(i * 0.5, [ebike(0.3)] if i % 5 in (0, 2) else []) for i in range(60)]
    assert run(PresenceRule(zone(track_evidence=EVIDENCE)), samples) == []


def test_a_strong_object_starts_as_before_with_the_lever_on() -> None:
    samples = [(i * 0.5, [ebike(0.6)]) for i in range(10)]
    for z in (zone(), zone(track_evidence=EVIDENCE)):
        assert [(e.phase.value, e.t, e.started_t) for e in run(PresenceRule(z), samples)] == [("start", 2.0, 0.0)]


def test_the_evidence_episode_ends_after_clear_like_any_other() -> None:
    samples = hovering() + [(12.5 + i * 0.5, []) for i in range(30)]
    events = run(PresenceRule(zone(track_evidence=EVIDENCE)), samples)
    assert [(e.phase.value, e.t) for e in events] == [("start", 2.0), ("end", 22.0)]


def test_evidence_chains_forget_an_object_missed_for_the_whole_window() -> None:
    chains = EvidenceChains(zone(track_evidence=EVIDENCE).track_evidence)  # type: ignore[arg-type]
    for i in range(4):
        assert chains.update(i * 0.5, [ebike(0.3)]) == {}
    for i in range(4, 9):
        chains.update(i * 0.5, [])
    # Its 4 old sightings are gone: 4 more samples at 0.3 (1.2) are not enough on their own.
    assert all(chains.update(4.5 + i * 0.5, [ebike(0.3)]) == {} for i in range(4))
    assert chains.update(6.5, [ebike(0.3)]) == {0: 4.5}


@pytest.mark.parametrize(("evidence", "message"), [
    ({"samples": 5, "min_total": 0.3}, "track_evidence.min_total 0.3 is not above min_score 0.35"),
    ({"samples": 3, "min_total": 3.5}, "can never be reached"),
    ({"samples": 1, "min_total": 0.5}, "samples"),
    ({"samples": 5, "min_total": 1.25, "window": 3}, "window"),
])
def test_a_wrong_track_evidence_is_refused_naming_the_key_and_the_fix(evidence: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        zone(track_evidence=evidence)


def test_track_evidence_is_refused_on_a_fire_lane() -> None:
    with pytest.raises(ValidationError, match="track_evidence applies only to zones of kind indoor or occupancy"):
        ZoneConfig.model_validate({"id": "lane", "kind": "fire_lane", "polygon": FLOOR, "track_evidence": EVIDENCE})


def test_the_lever_is_off_unless_configured() -> None:
    assert zone().track_evidence is None


# lift-ebike-s1 (`models eval-seeds --seeds 0,1,2`, seed 1) on elevator_ebike_cctv_20s.mp4 at 2 fps,
# scene gate off: its best e-bike box on the partly hidden e-bike, sample by sample from t = 0
# (docs/models.md). The detector passes nothing under 0.25, so the first 4 never reach the rule.
HIDDEN_EBIKE_S1 = [0.18, 0.19, 0.21, 0.21, 0.3, 0.29, 0.29, 0.29, 0.32, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.25, 0.26,
                   0.25, 0.25, 0.19, 0.19, 0.19, 0.19, 0.34, 0.34, 0.34, 0.34, 0.23, 0.23, 0.23, 0.23, 0.3, 0.3, 0.3,
                   0.3, 0.19, 0.18, 0.18, 0.18]
HIDDEN_BOX = (0.19, 0.49, 0.47, 0.98)


def test_the_partly_hidden_ebike_as_a_trained_model_scores_it_starts_only_with_the_lever() -> None:
    samples = [(i * 0.5, [ebike(s, None, HIDDEN_BOX)] if s >= 0.25 else []) for i, s in enumerate(HIDDEN_EBIKE_S1)]
    assert max(HIDDEN_EBIKE_S1) < 0.35 and run(PresenceRule(zone()), samples) == []
    events = run(PresenceRule(zone(track_evidence=EVIDENCE)), samples)
    # Seen from 2.0 s; 0.3 + 0.29 * 3 + 0.32 = 1.49 at 4.0 s. It stays one episode to the clip's end.
    assert [(e.phase.value, e.t, e.started_t) for e in events] == [("start", 4.0, 2.0)]
