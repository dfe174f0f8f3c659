"""A property of the ingest, checked by hypothesis on SQLite and PostgreSQL: whatever the edges send
(starts, updates, ends of several episodes on two cameras, evidence before or after its event,
actuation records), the store ends the same whether the messages are handled one by one or in
batches of any size, and whatever the broker redelivers (a message again, later, after a lost
acknowledgement)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from broker.payloads import Actuation, ActuationAction, HazardKind, Phase
from broker.topics import actuation_topic, event_topic, evidence_topic
from central.ingest.service import IngestService
from central.store.tables import ActuationRow, AuditRecord, Base, Event, Incident, IncidentEvidence, utcnow
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, T0, event, jpeg_bytes, sha, wire

PLACES = [("street-north", "kerb-lane", HazardKind.FIRE_LANE_BLOCKED), ("elevator-1", "car", HazardKind.EBIKE_INDOOR)]


@st.composite
def edge_messages(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """What edges publish, in the order their outboxes send it."""
    messages: list[tuple[str, bytes]] = []
    for n in range(draw(st.integers(1, 4))):
        camera, zone, hazard = draw(st.sampled_from(PLACES))
        key = f"k-{n}-{camera}"
        start_s = draw(st.integers(0, 3000))
        phases = [Phase.START] + [Phase.UPDATE] * draw(st.integers(0, 2)) + ([Phase.END] if draw(st.booleans()) else [])
        for seq, phase in enumerate(phases, 1):
            blob = jpeg_bytes(f"{key}-{seq}") if phase != Phase.END and draw(st.booleans()) else None
            ev = event(key, phase, camera=camera, zone=zone, hazard=hazard, seq=seq, score=draw(st.sampled_from([0.4, 0.9])),
                       started_at=T0 + timedelta(seconds=start_s), observed_after_s=10 * seq, snapshot=blob)
            message = (event_topic(SITE, EDGE), wire(ev))
            if blob is not None:
                blob_message = (evidence_topic(SITE, EDGE, sha(blob)), blob)
                messages += [blob_message, message] if draw(st.booleans()) else [message, blob_message]
            else:
                messages.append(message)
            if phase == Phase.START and hazard == HazardKind.EBIKE_INDOOR and draw(st.booleans()):
                hold = Actuation(event_id=uuid.uuid4(), site=SITE, edge=EDGE, camera=camera, zone=zone,
                                 actuator="lift-door", kind="modbus_tcp", action=ActuationAction.HOLD, ok=True,
                                 incident_key=key, at=T0 + timedelta(seconds=start_s + 1), latency_ms=90.0)
                messages.insert(len(messages) - draw(st.integers(0, 1)), (actuation_topic(SITE, EDGE), hold.to_wire()))
    return messages


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[str, bytes]], list[list[tuple[str, bytes]]]]:
    """The messages, and how the broker delivers them: in order, some again later, in batches."""
    sent = draw(edge_messages())
    delivered = list(sent)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(sent) - 1))
        delivered.insert(draw(st.integers(i + 1, len(delivered))), sent[i])  # redelivered after a lost ack
    batches, rest = [], delivered
    while rest:
        size = draw(st.integers(1, 8))
        batches.append(rest[:size])
        rest = rest[size:]
    return sent, batches


def _clear(store: Store) -> None:
    with store.sessions() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(delete(table))
        s.commit()


def _snapshot(store: Store) -> dict[str, object]:
    with store.sessions() as s:
        keys = {i.id: i.incident_key for i in s.scalars(select(Incident))}
        return {
            "incidents": sorted((i.incident_key, i.state, i.condition, i.event_count, i.episode_count, i.max_score,
                                 i.latest_snapshot_sha256, i.assigned_worker, i.ended_at) for i in s.scalars(select(Incident))),
            "events": sorted((keys[e.incident_id], e.event_id) for e in s.scalars(select(Event))),
            "evidence": sorted((keys[link.incident_id], link.sha256, link.kind) for link in s.scalars(select(IncidentEvidence))),
            "audit": sorted((keys[a.incident_id], a.seq, a.action, a.from_state, a.to_state)
                            for a in s.scalars(select(AuditRecord))),
            "actuations": sorted((a.event_id, a.incident_key) for a in s.scalars(select(ActuationRow))),
        }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(plan=deliveries())
def test_one_by_one_or_batched_with_redeliveries_the_store_ends_the_same(store: Store, plan) -> None:  # noqa: ANN001
    sent, batches = plan
    _clear(store)
    for topic, payload in sent:
        store.handle(topic, payload)
    once = _snapshot(store)
    _clear(store)
    for batch in batches:
        with store.sessions() as session:
            IngestService(session, store.evidence, store.router).handle_batch(
                [(topic, payload, utcnow()) for topic, payload in batch])
    assert _snapshot(store) == once
