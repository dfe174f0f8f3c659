"""Deadlines with a hand-moved clock: yellow at 80 %, red when overdue, escalation one level up
per overdue stage, and a scheduler that picks up where it was after a restart."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from broker.payloads import HazardKind
from broker.topics import event_topic
from central.store.tables import Incident, Task, WebhookDelivery
from central.workflow.scheduler import DeadlineScheduler, deadline_color
from tests.central.conftest import make_workflow
from tests.central.factories import EDGE, SITE, T0, event, wire

EBIKE = dict(camera="elevator-1", zone="car", hazard=HazardKind.EBIKE_INDOOR)
HOOK = {"name": "duty", "url": "http://127.0.0.1:9/hook", "events": ["escalated"]}


def test_colour_thresholds() -> None:
    from datetime import timedelta

    end = T0 + timedelta(minutes=10)
    assert deadline_color(T0, end, T0 + timedelta(minutes=7, seconds=59)) == "green"
    assert deadline_color(T0, end, T0 + timedelta(minutes=8)) == "yellow"
    assert deadline_color(T0, end, end) == "red"


def test_overdue_escalates_once_per_stage_and_survives_a_restart(database_url: str, tmp_path: Path) -> None:
    runs = make_workflow(database_url, tmp_path, webhooks=[HOOK])
    wf = next(runs)
    # An e-bike at 0.7 ≥ 0.5 is registered without triage and dispatched to li-qiang (g2): accept in 5 min.
    wf.ingest(event_topic(SITE, EDGE), wire(event("k-late", score=0.7, **EBIKE)))
    scheduler: DeadlineScheduler = wf.central.scheduler
    with wf.central.ctx.sessions() as s:
        inc = s.scalar(select(Incident).where(Incident.incident_key == "k-late"))
        iid = inc.id
        assert (inc.state, inc.assigned_worker, inc.stage, inc.deadline_color) == ("dispatched", "li-qiang", "accept",
                                                                                   "green")
    assert not scheduler.tick().changed
    wf.clock.advance(4 * 60)  # 80 % of 5 minutes
    assert scheduler.tick().yellow == [iid]
    assert wf.get("li", f"/api/v1/incidents/{iid}").json()["deadline_color"] == "yellow"
    wf.clock.advance(61)
    assert scheduler.tick().red == [iid]
    assert scheduler.tick().red == []  # once per stage, not once per tick
    inc = wf.get("admin", f"/api/v1/incidents/{iid}").json()
    assert (inc["deadline_color"], inc["supervised"], inc["escalation_level"], inc["escalated_to"]) == (
        "red", True, 1, "c1")
    board = wf.get("chief", "/api/v1/supervision").json()
    assert [i["id"] for i in board["overdue"]] == [iid]
    assert {"code": "g2", "red": 1}.items() <= next(n for n in board["by_grid"] if n["code"] == "g2").items()
    with wf.central.ctx.sessions() as s:
        # The community's chief gets the task on their phone; a webhook goes out for the duty group.
        assert {t.worker for t in s.scalars(select(Task).where(Task.incident_id == iid))} == {"li-qiang", "zhao-chief"}
        assert [d.event for d in s.scalars(select(WebhookDelivery))] == ["escalated"]

    # The worker accepts late: a new stage with its own clock (handle: 30 min).
    assert wf.act("li", iid, "accept").status_code == 200
    clock = wf.clock
    next(runs, None)  # central stops

    # Two hours pass while central is down; a fresh process catches up with one escalation.
    clock.advance(2 * 3600)
    again = make_workflow(database_url, tmp_path, webhooks=[HOOK])
    wf2 = next(again)
    wf2.clock.set(clock.now())
    result = wf2.central.scheduler.tick()
    assert result.red == [iid]
    inc = wf2.get("admin", f"/api/v1/incidents/{iid}").json()
    assert (inc["stage"], inc["escalation_level"], inc["escalated_to"]) == ("handle", 2, "s1")
    history = [h["action"] for h in wf2.get("admin", f"/api/v1/incidents/{iid}/history").json()]
    assert history == ["receive", "register", "dispatch", "escalate", "accept", "escalate"]
    assert wf2.get("admin", "/api/v1/stats").json()["overdue_now"] == 1
    next(again, None)


def test_scheduler_thread_ticks_by_itself(database_url: str, tmp_path: Path) -> None:
    runs = make_workflow(database_url, tmp_path, scheduler_interval_s=0.2)
    wf = next(runs)
    wf.ingest(event_topic(SITE, EDGE), wire(event("k-thread", score=0.9, **EBIKE)))
    wf.clock.advance(3600)
    wf.central.start_background()
    from tests.support import wait_until

    def red() -> bool:
        with wf.central.ctx.sessions() as s:
            return s.scalar(select(Incident.deadline_color).where(Incident.incident_key == "k-thread")) == "red"

    wait_until(red, 10, what="the scheduler thread to mark the incident overdue")
    next(runs, None)
