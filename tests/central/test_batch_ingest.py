"""One transaction per burst: the batch path stores exactly what one-by-one handling would."""

from __future__ import annotations

from sqlalchemy import func, select

from broker.payloads import Phase
from broker.topics import event_topic, evidence_topic
from central.ingest.service import IngestService
from central.store.tables import DeadLetter, Event, Incident, IncidentEvidence, utcnow
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, event, jpeg_bytes, sha, wire

EVENTS = event_topic(SITE, EDGE)


def _batch(store: Store, messages: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    with store.sessions() as session:
        return IngestService(session, store.evidence, store.router).handle_batch(
            [(topic, payload, utcnow()) for topic, payload in messages])


def test_a_batch_folds_events_dedups_within_itself_and_links_blobs_either_way(store: Store) -> None:
    before, after = jpeg_bytes("b-before"), jpeg_bytes("b-after")
    start = event("k-b1", snapshot=before)
    update = event("k-b1", Phase.UPDATE, seq=2, observed_after_s=5, snapshot=after)
    outcomes = _batch(store, [
        (evidence_topic(SITE, EDGE, sha(before)), before),  # blob before its event
        (EVENTS, wire(start)),
        (EVENTS, wire(start)),  # the same event twice in one batch
        (EVENTS, wire(update)),
        (EVENTS, wire(event("k-b2", camera="elevator-1", zone="car"))),
        (evidence_topic(SITE, EDGE, sha(after)), after),  # blob after its event
    ])
    assert [o.kind for o in outcomes] == ["evidence", "event", "duplicate", "event", "event", "evidence"]
    with store.sessions() as s:
        incident = s.scalar(select(Incident).where(Incident.incident_key == "k-b1"))
        assert incident is not None and incident.event_count == 2
        linked = set(s.scalars(select(IncidentEvidence.sha256).where(IncidentEvidence.incident_id == incident.id)))
        assert linked == {sha(before), sha(after)}
        assert s.scalar(select(func.count()).select_from(Incident)) == 2
    # The same batch again (a redelivery after a lost ack) changes nothing.
    again = _batch(store, [(EVENTS, wire(start)), (EVENTS, wire(update))])
    assert [o.kind for o in again] == ["duplicate", "duplicate"]


def test_a_bad_message_in_a_batch_is_dead_lettered_and_the_rest_stored(store: Store) -> None:
    good = [event(f"k-bad-{n}", zone=f"z{n}") for n in range(3)]
    outcomes = _batch(store, [(EVENTS, wire(good[0])), (EVENTS, b"{not json"), (EVENTS, wire(good[1])),
                              (EVENTS, wire(good[2]))])
    assert [o.kind for o in outcomes] == ["event", "dead_letter", "event", "event"]
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 3
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 1


def test_repeated_episodes_merge_within_one_batch_and_across_batches(store: Store) -> None:
    from datetime import timedelta

    from tests.central.factories import T0

    first = event("k-ep-a", zone="same")
    second = event("k-ep-b", zone="same", started_at=T0 + timedelta(minutes=5))
    other_zone = event("k-ep-c", zone="elsewhere")
    outcomes = _batch(store, [(EVENTS, wire(first)), (EVENTS, wire(second)), (EVENTS, wire(other_zone))])
    assert outcomes[0].incident_id == outcomes[1].incident_id != outcomes[2].incident_id
    third = event("k-ep-d", zone="same", started_at=T0 + timedelta(minutes=20))
    later = _batch(store, [(EVENTS, wire(third)), (EVENTS, wire(event("k-ep-e", zone="elsewhere",
                                                                     started_at=T0 + timedelta(hours=5))))])
    assert later[0].incident_id == outcomes[0].incident_id
    assert later[1].incident_id != outcomes[2].incident_id  # five hours later: a new incident
    with store.sessions() as s:
        merged = s.get(Incident, outcomes[0].incident_id)
        assert merged is not None and merged.episode_count == 3 and merged.event_count == 3
