"""Receipts and hellos built from a committed batch (pure: no broker, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from broker.payloads import RECEIPTS_CAPABILITY, CentralHello, Receipt
from broker.topics import event_topic, evidence_topic, hello_topic, receipt_topic, status_topic
from central.evidence.store import StoredBlob
from central.ingest import receipts
from tests.central.factories import EDGE, SITE, event, jpeg_bytes, sha, wire

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _parse(messages: list[tuple[str, bytes]]) -> dict[str, Receipt]:
    return {topic: Receipt.model_validate_json(payload) for topic, payload in messages}


def test_one_receipt_per_edge_names_its_events_and_blobs_whatever_became_of_them() -> None:
    blob = jpeg_bytes("r1")
    first, second, other = event("k-1", snapshot=blob), event("k-2"), event("k-3", edge="edge-2")
    items = [
        (evidence_topic(SITE, EDGE, sha(blob)), StoredBlob(sha(blob), len(blob), "image/jpeg")),  # the receiver stored it
        (event_topic(SITE, EDGE), wire(first)),
        (event_topic(SITE, EDGE), wire(first)),  # a resend central had already: receipted again
        (event_topic(SITE, EDGE), wire(second)),
        (event_topic(SITE, "edge-2"), wire(other)),
        (event_topic(SITE, EDGE), b'{"schema": "sharpeyes.event/1", "event_id": "not-a-uuid"}'),  # dead letter, no id
        (status_topic(SITE, EDGE), b"{}"),  # status is retained state, not receipted
    ]
    by_topic = _parse(receipts.receipts_for(items, NOW))
    assert set(by_topic) == {receipt_topic(SITE, EDGE), receipt_topic(SITE, "edge-2")}
    mine = by_topic[receipt_topic(SITE, EDGE)]
    assert mine.event_ids == [first.event_id, first.event_id, second.event_id]
    assert mine.evidence == [sha(blob)] and mine.site == SITE and mine.edge == EDGE and mine.at == NOW
    assert by_topic[receipt_topic(SITE, "edge-2")].event_ids == [other.event_id]


def test_the_event_id_is_found_wherever_the_edge_put_it() -> None:
    e = event("k-order")
    reordered = json.dumps({"seq": 1, "z": "x" * 100, "event_id": str(e.event_id)}).encode()
    assert receipts.event_id_of(wire(e)) == e.event_id
    assert receipts.event_id_of(reordered) == e.event_id
    assert receipts.event_id_of(b"garbage") is None


def test_large_batches_are_split_into_receipts_of_bounded_size(monkeypatch) -> None:
    monkeypatch.setattr(receipts, "RECEIPT_MAX_ITEMS", 3)
    events = [event(f"k-{i}") for i in range(7)]
    out = receipts.receipts_for([(event_topic(SITE, EDGE), wire(e)) for e in events], NOW)
    parsed = [Receipt.model_validate_json(payload) for _, payload in out]
    assert [len(r.event_ids) for r in parsed] == [3, 3, 1]
    assert [i for r in parsed for i in r.event_ids] == [e.event_id for e in events]


def test_hellos_offer_receipts_for_a_day_to_every_edge() -> None:
    out = receipts.hellos_for(SITE, [EDGE, "edge-2"], NOW)
    assert [topic for topic, _ in out] == [hello_topic(SITE, EDGE), hello_topic(SITE, "edge-2")]
    hello = CentralHello.model_validate_json(out[0][1])
    assert RECEIPTS_CAPABILITY in hello.capabilities
    assert hello.receipts_until == NOW + timedelta(hours=24) and hello.edge == EDGE
