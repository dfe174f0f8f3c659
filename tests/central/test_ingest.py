"""IngestService against real SQLite and PostgreSQL: what an edge's messages become in the store."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from broker.payloads import CameraHealth, EdgeStatus, HealthState, Phase
from broker.topics import camera_health_topic, event_topic, evidence_topic, status_topic
from central.store.tables import (
    CameraHealthRow,
    DeadLetter,
    EdgeStatusRow,
    Event,
    Evidence,
    Incident,
    IncidentEvidence,
    Task,
)
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, T0, event, jpeg_bytes, sha, wire

EVENTS = event_topic(SITE, EDGE)


def _count(store: Store, model) -> int:  # type: ignore[no-untyped-def]
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _incident(store: Store, key: str) -> Incident:
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == key))
        assert incident is not None, f"no incident {key}"
        return incident


def _dead_letters(store: Store) -> list[DeadLetter]:
    with store.sessions() as s:
        return list(s.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def test_duplicate_event_is_stored_once(store: Store) -> None:
    payload = wire(event("k-dup"))
    first = store.handle(EVENTS, payload)
    again = store.handle(EVENTS, payload)
    assert first.kind == "event" and first.created_incident
    assert again.kind == "duplicate"
    assert _count(store, Event) == 1
    assert _incident(store, "k-dup").event_count == 1
    assert _dead_letters(store) == []


def test_start_update_end_lifecycle_on_one_incident(store: Store) -> None:
    snap1, snap2 = jpeg_bytes("one"), jpeg_bytes("two")
    store.handle(EVENTS, wire(event("k-life", Phase.START, seq=1, score=0.6, snapshot=snap1)))
    opened = _incident(store, "k-life")
    assert (opened.state, opened.condition, opened.ended_at) == ("dispatched", "active", None)

    store.handle(EVENTS, wire(event("k-life", Phase.UPDATE, seq=2, score=0.9, observed_after_s=300, snapshot=snap2)))
    store.handle(EVENTS, wire(event("k-life", Phase.END, seq=3, score=0.5, observed_after_s=400)))

    closed = _incident(store, "k-life")
    assert _count(store, Incident) == 1
    assert closed.event_count == 3
    assert closed.condition == "cleared"
    assert closed.state == "dispatched"  # the camera clearing the lane does not close the case
    assert closed.started_at == T0
    assert closed.last_observed_at == T0 + timedelta(seconds=400)
    assert closed.ended_at == T0 + timedelta(seconds=400)
    assert closed.max_score == 0.9
    assert closed.latest_snapshot_sha256 == sha(snap2)
    assert (closed.camera, closed.zone, closed.grid_cell, closed.hazard) == (
        "street-north",
        "kerb-lane",
        "g1",
        "fire_lane_blocked",
    )


def test_update_and_end_before_start_still_make_one_incident(store: Store) -> None:
    late_snap, early_snap = jpeg_bytes("late"), jpeg_bytes("early")
    update = store.handle(EVENTS, wire(event("k-ooo", Phase.UPDATE, seq=5, observed_after_s=60, snapshot=late_snap)))
    assert update.kind == "event" and update.created_incident
    store.handle(EVENTS, wire(event("k-ooo", Phase.END, seq=6, observed_after_s=90)))
    start = store.handle(EVENTS, wire(event("k-ooo", Phase.START, seq=4, snapshot=early_snap)))
    assert start.kind == "event" and not start.created_incident

    incident = _incident(store, "k-ooo")
    assert _count(store, Incident) == 1
    assert incident.event_count == 3
    # The late start must neither reopen the cleared condition nor replace the newer snapshot.
    assert incident.condition == "cleared"
    assert incident.ended_at == T0 + timedelta(seconds=90)
    assert incident.last_observed_at == T0 + timedelta(seconds=90)
    assert incident.latest_snapshot_sha256 == sha(late_snap)
    # Only one task for one incident, however its events arrived.
    assert _count(store, Task) == 1


def test_malformed_unknown_schema_and_missing_fields_become_dead_letters(store: Store) -> None:
    good = json.loads(wire(event("k-bad")))
    missing = {k: v for k, v in good.items() if k != "camera"}
    future = dict(good, schema="sharpeyes.event/2")
    bad_inputs = [
        (EVENTS, b"{not json", "not JSON"),
        (EVENTS, json.dumps(future).encode(), "unknown schema 'sharpeyes.event/2'"),
        (EVENTS, json.dumps(missing).encode(), "camera: Field required"),
        (EVENTS, b"[1, 2]", "not a JSON object"),
        ("sharpeyes/v1/demo/edge-1/bogus", wire(event("k-bad")), "unknown topic"),
        ("other/topic", b"x", "unknown topic"),
        (event_topic(SITE, "edge-2"), wire(event("k-bad")), "arrived on the topic of demo/edge-2"),
    ]
    for topic, payload, _ in bad_inputs:
        assert store.handle(topic, payload).kind == "dead_letter"

    letters = _dead_letters(store)
    assert len(letters) == len(bad_inputs)
    for letter, (topic, payload, reason) in zip(letters, bad_inputs, strict=True):
        assert letter.topic == topic
        assert letter.payload == payload  # nothing is lost: the bytes are kept for a later look
        assert reason in letter.reason, letter.reason
    assert _count(store, Incident) == 0 and _count(store, Event) == 0


def test_incident_key_reused_by_another_camera_is_rejected(store: Store) -> None:
    store.handle(EVENTS, wire(event("k-clash", camera="street-north")))
    outcome = store.handle(EVENTS, wire(event("k-clash", Phase.UPDATE, camera="lobby")))
    assert outcome.kind == "dead_letter"
    assert "already belongs to demo/edge-1/street-north" in (outcome.reason or "")
    assert _incident(store, "k-clash").event_count == 1


def test_evidence_with_wrong_sha256_is_dead_lettered_and_right_one_stored_once(store: Store) -> None:
    blob = jpeg_bytes("snap")
    wrong_topic = evidence_topic(SITE, EDGE, "f" * 64)
    assert store.handle(wrong_topic, blob).kind == "dead_letter"
    assert "sha256 mismatch" in _dead_letters(store)[0].reason
    assert not store.evidence.path_for("f" * 64).exists()

    topic = evidence_topic(SITE, EDGE, sha(blob))
    assert store.handle(topic, blob).kind == "evidence"
    assert store.handle(topic, blob).kind == "evidence_duplicate"
    assert _count(store, Evidence) == 1
    path = store.evidence.path_for(sha(blob))
    assert path == store.evidence.root / sha(blob)[:2] / sha(blob)
    assert path.read_bytes() == blob
    with store.sessions() as s:
        row = s.get(Evidence, sha(blob))
        assert row is not None and (row.content_type, row.size) == ("image/jpeg", len(blob))


def test_evidence_links_whichever_arrives_first(store: Store) -> None:
    before, after = jpeg_bytes("before"), jpeg_bytes("after")
    # Blob first, then the event naming it.
    store.handle(evidence_topic(SITE, EDGE, sha(before)), before)
    store.handle(EVENTS, wire(event("k-ev", snapshot=before)))
    # Event first, then its blob.
    store.handle(EVENTS, wire(event("k-ev", Phase.UPDATE, seq=2, observed_after_s=10, snapshot=after)))
    incident = _incident(store, "k-ev")
    with store.sessions() as s:
        linked = set(s.scalars(select(IncidentEvidence.sha256).where(IncidentEvidence.incident_id == incident.id)))
    assert linked == {sha(before)}
    store.handle(evidence_topic(SITE, EDGE, sha(after)), after)
    with store.sessions() as s:
        linked = set(s.scalars(select(IncidentEvidence.sha256).where(IncidentEvidence.incident_id == incident.id)))
    assert linked == {sha(before), sha(after)}


def test_new_incident_is_routed_to_the_cell_worker_or_nearest_ancestor(store: Store) -> None:
    store.handle(EVENTS, wire(event("k-g1", camera="street-north")))
    store.handle(EVENTS, wire(event("k-g2", camera="elevator-1", zone="car")))
    store.handle(EVENTS, wire(event("k-none", camera="lobby", zone=None)))
    assert _incident(store, "k-g1").assigned_worker == "wang-fang"
    assert _incident(store, "k-g2").assigned_worker == "zhao-chief"  # g2 has no worker; its community has
    assert _incident(store, "k-none").assigned_worker is None  # a camera with no grid cell waits for a monitor
    with store.sessions() as s:
        tasks = {(t.worker, t.notified_at) for t in s.scalars(select(Task))}
    assert tasks == {("wang-fang", None), ("zhao-chief", None)}


def test_edge_status_and_camera_health_keep_the_latest(store: Store) -> None:
    online = EdgeStatus(site=SITE, edge=EDGE, state="online", at=T0 + timedelta(minutes=5), cameras=["street-north"])
    stale = EdgeStatus(site=SITE, edge=EDGE, state="offline", at=T0)
    assert store.handle(status_topic(SITE, EDGE), online.model_dump_json(by_alias=True).encode()).kind == "status"
    # A retained message replayed on reconnect is older and must not win.
    assert store.handle(status_topic(SITE, EDGE), stale.model_dump_json(by_alias=True).encode()).kind == "ignored"
    health = CameraHealth(site=SITE, edge=EDGE, camera="street-north", state=HealthState.TAMPERED, since=T0, cause="covered")
    topic = camera_health_topic(SITE, EDGE, "street-north")
    assert store.handle(topic, health.model_dump_json(by_alias=True).encode()).kind == "health"
    assert store.handle(topic, b'{"schema": "sharpeyes.camera-health/1"}').kind == "dead_letter"
    with store.sessions() as s:
        status = s.get(EdgeStatusRow, (SITE, EDGE))
        camera = s.get(CameraHealthRow, (SITE, EDGE, "street-north"))
        assert status is not None and (status.state, status.cameras) == ("online", ["street-north"])
        assert camera is not None and (camera.state, camera.cause) == ("tampered", "covered")
