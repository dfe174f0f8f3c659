"""Two central processes on one database (a SQLite file, and PostgreSQL): the ``deadlines`` and
``webhooks`` leases let one of them work at a time, the other takes over when it stops or its
lease runs out, and an escalation claimed by one cannot be repeated by the other."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import central.workflow.scheduler as scheduler_module
from broker.payloads import HazardKind
from broker.topics import event_topic
from central.server import Central, build_central
from central.store.db import make_engine, make_session_factory
from central.store.lease import LeaderLease
from central.store.migrate import upgrade
from central.store.tables import AuditRecord, Task, WebhookDelivery
from central.workflow import audit
from central.workflow.scheduler import DeadlineScheduler, TickResult
from tests.central.conftest import Workflow, make_workflow
from tests.central.factories import EDGE, SITE, T0, event, wire, workflow_config, workflow_site

HOOK = {"name": "duty", "url": "http://127.0.0.1:9/hook", "events": ["escalated"]}
ACCEPT_S = 5 * 60  # an e-bike's accept deadline in the test workflow
TTL_S = 45.0  # three ticks of the default 15 s


@dataclass
class Pair:
    """Central A (with the API and ingest of the test workflow) and central B, its own engine, one clock."""

    wf: Workflow
    b: Central

    @property
    def a(self) -> Central:
        return self.wf.central  # type: ignore[return-value]

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.wf.clock

    def overdue_soon(self, key: str, zone: str = "car") -> int:
        """An e-bike dispatched at once to li-qiang (grid g2): overdue ACCEPT_S from now.

        Another open one in the same zone would take it in as a repeated episode: give a new zone.
        """
        outcome = self.wf.ingest(event_topic(SITE, EDGE),
                                 wire(event(key, score=0.7, camera="elevator-1", zone=zone,
                                            hazard=HazardKind.EBIKE_INDOOR, started_at=self.clock.now())))
        return outcome.incident_id

    def escalations(self, incident_id: int) -> tuple[int, int, int]:
        """Escalate audit records, `escalated` webhooks and tasks for the community chief."""
        with self.a.ctx.sessions() as s:
            return (
                s.scalar(select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.incident_id == incident_id, AuditRecord.action == "escalate")),
                s.scalar(select(func.count()).select_from(WebhookDelivery).where(
                    WebhookDelivery.incident_id == incident_id, WebhookDelivery.event == "escalated")),
                s.scalar(select(func.count()).select_from(Task).where(
                    Task.incident_id == incident_id, Task.worker == "zhao-chief")),
            )

    def chains_intact(self) -> bool:
        with self.a.ctx.sessions() as s:
            return audit.verify(s)[1] == []


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Iterator[Pair]:
    runs = make_workflow(database_url, tmp_path, webhooks=[HOOK])
    wf = next(runs)
    b = build_central(workflow_site(), database_url, tmp_path / "evidence", tmp_path / "var-b", ingest=False,
                      workflow=workflow_config(webhooks=[HOOK]), clock=wf.clock)
    yield Pair(wf, b)
    b.close()
    next(runs, None)


def _schedulers(pair: Pair) -> tuple[DeadlineScheduler, DeadlineScheduler]:
    a, b = pair.a.scheduler, pair.b.scheduler
    assert a is not None and b is not None
    return a, b


def test_two_schedulers_escalate_an_overdue_incident_once(pair: Pair) -> None:
    a, b = _schedulers(pair)
    iid = pair.overdue_soon("k-once")
    pair.clock.advance(ACCEPT_S + 1)
    results = [a.tick(), b.tick(), a.tick(), b.tick()]
    assert [r.leader for r in results] == [True, False, True, False]
    assert [r.red for r in results] == [[iid], [], [], []]
    assert pair.escalations(iid) == (1, 1, 1)
    assert pair.chains_intact()
    inc = pair.wf.get("admin", f"/api/v1/incidents/{iid}").json()
    assert (inc["supervised"], inc["escalation_level"], inc["escalated_to"]) == (True, 1, "c1")


def test_the_follower_takes_over_when_the_leader_stops(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="central.store.lease")
    a, b = _schedulers(pair)
    iid = pair.overdue_soon("k-handover")
    assert a.tick().leader and not b.tick().leader
    assert f"lease deadlines: {a.lease.holder} leads; {b.lease.holder} stands by" in caplog.messages
    pair.clock.advance(ACCEPT_S + 1)
    a.stop()  # a clean stop hands the lease over at once, long before it would expire
    assert f"lease deadlines: {a.lease.holder} released it" in caplog.messages
    result = b.tick()
    assert result.leader and result.red == [iid]
    assert f"lease deadlines: {b.lease.holder} leads now" in caplog.messages
    assert pair.escalations(iid) == (1, 1, 1)


def test_an_expired_lease_is_taken_over_and_the_old_leader_stands_by(pair: Pair,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="central.store.lease")
    a, b = _schedulers(pair)
    # Renewed each tick, the lease stays with A far beyond one TTL.
    for _ in range(8):
        assert a.tick().leader and not b.tick().leader
        pair.clock.advance(15)
    # A hangs (or its host dies): B stands by until the lease it last renewed has run out.
    iid = pair.overdue_soon("k-expired")
    pair.clock.advance(TTL_S - 15 - 1)
    assert not b.tick().leader
    pair.clock.advance(1)
    assert b.tick().leader
    assert any(m.startswith(f"lease deadlines: {b.lease.holder} takes over from {a.lease.holder}")
               for m in caplog.messages)
    # B ticks on and escalates the incident when it runs overdue.
    red: list[int] = []
    for _ in range(ACCEPT_S // 15):
        pair.clock.advance(15)
        red += b.tick().red
    assert red == [iid]
    # A comes back: it has lost the lease, says so, and does nothing.
    back = a.tick()
    assert not back.leader and back.red == []
    assert f"lease deadlines: {a.lease.holder} lost it to {b.lease.holder}; it stands by" in caplog.messages
    assert pair.escalations(iid) == (1, 1, 1)


def test_a_lease_lost_mid_tick_cannot_escalate_twice(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _schedulers(pair)
    iid = pair.overdue_soon("k-mid-tick")
    pair.clock.advance(ACCEPT_S + 1)
    real_color = scheduler_module.deadline_color
    during: list[TickResult] = []
    stalled = threading.Event()

    def stall_then_color(started: datetime, deadline: datetime, now: datetime) -> str:
        # A has read the overdue incident and stalls past its lease; B takes over and escalates it.
        if not stalled.is_set():
            stalled.set()
            pair.clock.advance(TTL_S + 1)
            during.append(b.tick())
        return real_color(started, deadline, now)

    monkeypatch.setattr(scheduler_module, "deadline_color", stall_then_color)
    stale = a.tick()
    assert stale.leader and stale.red == []  # its claim found the stage already red
    assert [(r.leader, r.red) for r in during] == [(True, [iid])]
    assert pair.escalations(iid) == (1, 1, 1)
    assert pair.chains_intact()


class _Ok:
    status_code, text = 200, "ok"

    def json(self) -> dict[str, int]:
        return {"errcode": 0}


def test_two_webhook_senders_post_each_delivery_once(pair: Pair) -> None:
    sa, sb = pair.a.webhooks, pair.b.webhooks
    assert sa is not None and sb is not None
    posts: list[tuple[str, str]] = []
    sa._post = lambda url, **kw: posts.append(("a", kw["headers"]["X-Sharpeyes-Delivery"])) or _Ok()
    sb._post = lambda url, **kw: posts.append(("b", kw["headers"]["X-Sharpeyes-Delivery"])) or _Ok()
    a, _ = _schedulers(pair)
    pair.overdue_soon("k-hook-1")
    pair.clock.advance(ACCEPT_S + 1)
    a.tick()
    assert (sa.send_due(), sb.send_due(), sa.send_due()) == (1, 0, 0)
    sa.stop()  # hands the webhooks lease over
    pair.overdue_soon("k-hook-2", zone="lobby")
    pair.clock.advance(ACCEPT_S + 1)
    a.tick()
    assert (sa.send_due(), sb.send_due()) == (0, 1)
    assert [who for who, _ in posts] == ["a", "b"] and len({d for _, d in posts}) == 2
    with pair.a.ctx.sessions() as s:
        assert [d.status for d in s.scalars(select(WebhookDelivery))] == ["delivered", "delivered"]


def test_racing_holders_get_one_winner_per_round(database_url: str) -> None:
    """Four would-be holders, each with its own engine (as separate processes), race for a missing
    lease (the INSERT) and then, round after round, for an expired one (the conditional UPDATE)."""
    from central.store.clock import ManualClock

    clock = ManualClock(T0)
    engines = [make_engine(database_url) for _ in range(4)]
    upgrade(engines[0])
    leases = [LeaderLease(make_session_factory(e), "race", ttl_s=10, clock=clock, holder=f"p{i}")
              for i, e in enumerate(engines)]
    try:
        for _ in range(4):
            gate = threading.Barrier(len(leases))
            won: dict[str, bool] = {}

            def contend(lease: LeaderLease, gate: threading.Barrier = gate, won: dict[str, bool] = won) -> None:
                gate.wait()
                won[lease.holder] = lease.acquire()

            threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(won.values()) == [False, False, False, True], won
            clock.advance(11)
    finally:
        for e in engines:
            e.dispose()
