"""The hold rules without a device: renewals, the cap, one hold per zone, manual release, errors."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.payloads import ActuationAction as A
from broker.payloads import ReleaseReason as R
from edge.actuators.holds import HoldBook, Step

WALL = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def book() -> HoldBook:
    return HoldBook(rearm_s=2.0, max_hold_s=90.0)


def ack(b: HoldBook, steps: list[Step], ok: bool, now: float) -> list[Step]:
    follow = []
    for step in steps:
        if step.device:
            follow += b.acknowledged(step, ok, now)
    return follow


def test_start_arms_at_once_and_renews_inside_the_device_timing() -> None:
    b = book()
    steps = b.start("lift", "car", "k1", frame_monotonic=99.5, now=100.0, wall=WALL)
    assert [(s.action, s.device) for s in steps] == [(A.HOLD, True)]
    ack(b, steps, True, 100.01)
    assert b.tick(101.0) == []
    assert b.next_due() == 102.01
    (renew,) = b.tick(102.05)
    assert renew.action == A.REARM and renew.holds[0].acknowledged


def test_one_hold_per_zone_and_a_shared_actuator_stays_on_for_the_other_zone() -> None:
    b = book()
    ack(b, b.start("lift", "car", "k1", 0, 0, WALL), True, 0)
    assert b.start("lift", "car", "k1", 1, 1, WALL) == []  # the same zone again: still one hold
    ack(b, b.start("lift-2", "car", "k2", 1, 1, WALL), True, 1)
    (only_record,) = b.end("lift", "car", 5)
    assert only_record.action == A.RELEASE and not only_record.device  # lift-2 still holds the output
    (release,) = b.end("lift-2", "car", 6)
    assert release.device and release.reason == R.HAZARD_ENDED


def test_cap_releases_escalates_and_is_not_taken_again_in_the_same_episode() -> None:
    b = book()
    ack(b, b.start("lift", "car", "k1", 0, 0, WALL), True, 0)
    assert b.next_due() == 2.0
    (capped,) = b.tick(90.0)
    assert capped.action == A.RELEASE and capped.reason == R.MAX_HOLD and capped.device
    ack(b, [capped], True, 90.0)
    assert b.start("lift", "car", "k1", 91, 91, WALL) == []  # same episode (incident key)
    b.end("lift", "car", 95)
    assert b.start("lift", "car", "k2", 96, 96, WALL)[0].action == A.HOLD  # a new episode holds again


def test_release_by_hand_names_who_and_vetoes_the_episode() -> None:
    b = book()
    ack(b, b.start("lift", "car", "k1", 0, 0, WALL), True, 0)
    (released,) = b.release_by_hand("monitor", camera="lift")
    assert released.reason == R.MANUAL and released.by == "monitor"
    assert b.start("lift", "car", "k1", 3, 3, WALL) == []
    assert b.release_by_hand("monitor") == []  # nothing left to release


def test_an_unanswered_renewal_lets_go_and_retries_with_a_doubling_delay() -> None:
    b = book()
    ack(b, b.start("lift", "car", "k1", 0, 0, WALL), True, 0)
    (renew,) = b.tick(2.0)
    (let_go,) = ack(b, [renew], False, 2.5)
    assert let_go.action == A.RELEASE and let_go.reason == R.ERROR
    assert b.next_due() == 3.5  # retry after 1 s
    (retry,) = b.tick(3.5)
    assert retry.action == A.HOLD  # the output's state is unknown: set it anew
    assert ack(b, [retry], False, 3.6) == []  # nothing on to let go of
    assert b.next_due() == 5.6  # then 2 s, 4 s ... up to 30 s
    assert ("lift", "car") in b.holds


def test_camera_loss_and_shutdown_let_go() -> None:
    b = book()
    ack(b, b.start("lift", "car", "k1", 0, 0, WALL), True, 0)
    (lost,) = b.camera_lost("lift", 1)
    assert lost.reason == R.CAMERA_LOST and lost.device
    ack(b, b.start("lift", "car", "k2", 2, 2, WALL), True, 2)
    (down,) = b.shutdown()
    assert down.reason == R.SHUTDOWN and b.holds == {}
    assert b.next_due() is None
