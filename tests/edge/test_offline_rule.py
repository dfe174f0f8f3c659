"""camera_offline: raised when a camera sends nothing for ``offline_s``, never because the edge is
behind. On a loaded 64-camera box a worker once waited over a minute while its camera's reader
kept receiving frames, and a working camera was reported offline."""

from __future__ import annotations

from broker.payloads import HazardKind, Phase
from edge.health import OfflineRule


def test_a_silent_camera_goes_offline_after_offline_s_and_back_with_its_next_frame():
    rule = OfflineRule(offline_s=60.0, started_at=0.0)
    assert rule.frame(1.0) == []
    assert rule.tick(60.5, None, last_frame=1.0) == []
    started = rule.tick(61.0, "stream ended", last_frame=1.0)
    assert [(e.hazard, e.phase, e.started_t) for e in started] == [(HazardKind.CAMERA_OFFLINE, Phase.START, 1.0)]
    assert started[0].cause == "no frames for 60 s: stream ended"
    assert rule.tick(90.0, "stream ended", last_frame=1.0) == [], "one episode, not one per tick"
    ended = rule.frame(95.0)
    assert [(e.phase, e.started_t) for e in ended] == [(Phase.END, 1.0)]


def test_frames_reaching_the_reader_keep_the_camera_online_while_its_worker_is_behind():
    rule = OfflineRule(offline_s=60.0, started_at=0.0)
    rule.frame(1.0)  # the worker's last sample; it then waits for the detector for minutes
    for now in range(2, 200):
        assert rule.tick(float(now), None, last_frame=now - 0.2) == []
    # The reader stops receiving too: now it is offline, counted from the reader's last frame.
    started = rule.tick(260.0, "no keyframe for 10 s", last_frame=199.8)
    assert [(e.phase, round(e.started_t, 1)) for e in started] == [(Phase.START, 199.8)]


def test_a_late_frame_from_a_behind_worker_does_not_move_the_silence_back():
    rule = OfflineRule(offline_s=10.0, started_at=0.0)
    rule.tick(50.0, None, last_frame=49.0)
    rule.frame(30.0)  # the worker catches up on an older frame
    assert rule.tick(55.0, None) == [], "silent since 49 s, not 30 s"
    assert rule.tick(59.5, None)[0].started_t == 49.0
