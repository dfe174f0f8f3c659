"""Actuation records (sharpeyes.actuation/1) in central, on SQLite and PostgreSQL: stored once,
linked to their incident by key whatever the arrival order, receipted, refused with a reason when
malformed, and a hold released at its cap escalates the incident to a person."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from broker.payloads import Actuation, ActuationAction, HazardKind, ReleaseReason
from broker.topics import actuation_topic, event_topic
from central.fleet import actuations
from central.ingest.receipts import receipts_for
from central.ingest.service import IngestService
from central.store.tables import ActuationRow, AuditRecord, DeadLetter, Incident, Task
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, T0, event, wire

TOPIC = actuation_topic(SITE, EDGE)


def record(key: str, action: ActuationAction = ActuationAction.HOLD, *, reason: ReleaseReason | None = None,
           ok: bool = True, after_s: float = 2.0, camera: str = "elevator-1") -> Actuation:
    return Actuation(event_id=uuid.uuid4(), site=SITE, edge=EDGE, camera=camera, zone="car", actuator="lift-1-door",
                     kind="modbus_tcp", action=action, reason=reason, ok=ok, error=None if ok else "unreachable",
                     incident_key=key, at=T0 + timedelta(seconds=after_s), held_since=T0 + timedelta(seconds=2),
                     latency_ms=120.0 if action == ActuationAction.HOLD else None)


def lift_event(key: str):  # noqa: ANN201
    return event(key, camera="elevator-1", zone="car", hazard=HazardKind.EBIKE_INDOOR, score=0.9)


def test_a_hold_before_its_event_is_linked_and_a_resend_is_stored_once(store: Store) -> None:
    hold = record("k-lift")
    assert store.handle(TOPIC, hold.to_wire()).kind == "actuation"  # the door before the evidence
    assert store.handle(TOPIC, hold.to_wire()).kind == "duplicate"
    store.handle(event_topic(SITE, EDGE), wire(lift_event("k-lift")))
    store.handle(TOPIC, record("k-lift", ActuationAction.REARM, after_s=4).to_wire())
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == "k-lift"))
        assert incident is not None
        rows = actuations.for_incident(s, incident)
        assert [(r.action, r.latency_ms) for r in rows] == [("hold", 120.0), ("rearm", None)]
        assert [r.actuator for r in actuations.holding(s, incident)] == ["lift-1-door"]
        state = actuations.state_of(actuations.newest_per_actuator(s, SITE)[(EDGE, "lift-1-door")])
        assert (state.state, state.camera, state.zone) == ("held", "elevator-1", "car")


def test_a_hold_released_at_its_cap_escalates_the_open_incident(store: Store) -> None:
    store.handle(event_topic(SITE, EDGE), wire(lift_event("k-cap")))
    store.handle(TOPIC, record("k-cap").to_wire())
    outcome = store.handle(TOPIC, record("k-cap", ActuationAction.RELEASE, reason=ReleaseReason.MAX_HOLD,
                                         after_s=92).to_wire())
    assert outcome.kind == "actuation" and outcome.moved_incident
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == "k-cap"))
        assert incident is not None and incident.escalation_level == 1 and incident.supervised
        escalation = s.scalar(select(AuditRecord).where(AuditRecord.incident_id == incident.id,
                                                        AuditRecord.action == "escalate"))
        assert escalation is not None and "lift-1-door released at its cap after 90 s" in (escalation.reason or "")
        # g2 has no worker of its own: the community chief gets the escalated task.
        assert "zhao-chief" in set(s.scalars(select(Task.worker).where(Task.incident_id == incident.id)))
        assert actuations.holding(s, incident) == []
    assert set(outcome.new_task_ids)


def test_ordinary_releases_and_failures_do_not_escalate(store: Store) -> None:
    store.handle(event_topic(SITE, EDGE), wire(lift_event("k-end")))
    for rec in (record("k-end", ok=False), record("k-end", ActuationAction.RELEASE, reason=ReleaseReason.HAZARD_ENDED)):
        assert not store.handle(TOPIC, rec.to_wire()).moved_incident
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == "k-end"))
        assert incident is not None and incident.escalation_level == 0


def test_malformed_or_foreign_records_become_dead_letters_with_the_reason(store: Store) -> None:
    no_reason = record("k-bad").to_wire().replace(b'"action":"hold"', b'"action":"release"')
    assert store.handle(TOPIC, no_reason).kind == "dead_letter"
    other_camera = record("k-bad", camera="garage-9").to_wire()
    assert store.handle(TOPIC, other_camera).kind == "dead_letter"
    wrong_schema = record("k-bad").to_wire().replace(b"sharpeyes.actuation/1", b"sharpeyes.actuation/9")
    assert store.handle(TOPIC, wrong_schema).kind == "dead_letter"
    with store.sessions() as s:
        reasons = [d.reason for d in s.scalars(select(DeadLetter).order_by(DeadLetter.id))]
        assert s.scalar(select(ActuationRow.id)) is None
    assert "reason is given with a release and only then" in reasons[0]
    assert "unknown camera 'garage-9'" in reasons[1]
    assert "unknown schema 'sharpeyes.actuation/9'" in reasons[2]


def test_a_batch_stores_event_and_actuations_and_receipts_name_both(store: Store) -> None:
    start = wire(lift_event("k-batch"))
    hold, capped = record("k-batch"), record("k-batch", ActuationAction.RELEASE, reason=ReleaseReason.MAX_HOLD, after_s=92)
    items = [(event_topic(SITE, EDGE), start, T0), (TOPIC, hold.to_wire(), T0), (TOPIC, capped.to_wire(), T0)]
    with store.sessions() as s:
        outcomes = IngestService(s, store.evidence, store.router).handle_batch(items)
    assert [o.kind for o in outcomes] == ["event", "actuation", "actuation"] and outcomes[2].moved_incident
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == "k-batch"))
        assert incident is not None and incident.escalation_level == 1
        assert len(actuations.for_incident(s, incident)) == 2
    (receipt,) = receipts_for([(t, p) for t, p, _ in items], T0)
    assert str(hold.event_id) in receipt[1].decode() and str(capped.event_id) in receipt[1].decode()


def test_release_from_the_incident_by_desk_and_assigned_unit_only(wf) -> None:  # noqa: ANN001 - tests.central.conftest.Workflow
    from central.store.tables import CommandRow

    wf.ingest(event_topic(SITE, EDGE), wire(event("k-speaker", score=0.9)))  # a fire lane: triage, then the property unit
    speaker = Actuation(event_id=uuid.uuid4(), site=SITE, edge=EDGE, camera="street-north", zone="kerb-lane",
                        actuator="lane-speaker", kind="http", action=ActuationAction.HOLD, ok=True, incident_key="k-speaker",
                        at=T0 + timedelta(seconds=3), held_since=T0 + timedelta(seconds=3), latency_ms=80.0)
    wf.ingest(TOPIC, speaker.to_wire())
    with wf.central.ctx.sessions() as s:
        incident_id = s.scalar(select(Incident.id).where(Incident.incident_key == "k-speaker"))
    assert wf.act("monitor", incident_id, "confirm").status_code == 200  # dispatched to unit pm-1

    mine = wf.get("property", f"/api/v1/incidents/{incident_id}").json()
    assert mine["holding"] == ["lane-speaker"] and mine["can_release_hold"]
    assert [a["latency_ms"] for a in mine["actuations"]] == [80.0]
    assert wf.get("other-unit", f"/api/v1/incidents/{incident_id}").status_code == 404
    path = f"/api/v1/incidents/{incident_id}/release-hold"
    assert wf.client.post(path, json={"reason": "a pram, not an e-bike"}, headers=wf.login("wang")).status_code == 403
    assert wf.client.post(path, json={"reason": ""}, headers=wf.login("property")).status_code == 422
    res = wf.client.post(path, json={"reason": "a pram, not an e-bike"}, headers=wf.login("property"))
    assert res.status_code == 202, res.text
    with wf.central.ctx.sessions() as s:
        command = s.get(CommandRow, res.json()["command_id"])
        assert command is not None and command.name == "release" and command.incident_id == incident_id
        assert command.args == {"camera": "street-north", "zone": "kerb-lane", "by": "property",
                                "reason": "a pram, not an e-bike"}
    history = wf.get("admin", f"/api/v1/incidents/{incident_id}/history").json()
    assert [(r["action"], r["actor"], r["reason"]) for r in history][-1] == ("release_hold", "property", "a pram, not an e-bike")
    assert wf.get("admin", f"/api/v1/incidents/{incident_id}/history/verify").json()["ok"]
