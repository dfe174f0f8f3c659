"""End-to-end receipts and the hello that offers them (pure: no sockets, no database).

After each commit central tells every edge which of its events and evidence blobs it now has, so
the edge forgets a message only when central holds it, not when the broker acknowledged it: a
broker that crashes before its next autosave, or a queue that overflows, then costs a resend, not
an event. Everything in a committed batch is receipted, whatever became of it (stored, a
duplicate, a dead letter kept with its reason): resending any of it cannot change the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from broker.payloads import RECEIPTS_CAPABILITY, CentralHello, Receipt
from broker.topics import hello_topic, parse_topic, receipt_topic

# The event id without parsing the whole payload: the writer already validated it once.
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([0-9a-fA-F-]{32,36})"')
# How long an edge may count on receipts after a hello; central renews the hello far more often.
RECEIPTS_VALID = timedelta(hours=24)
HELLO_RENEW_S = 3600.0
# A receipt names at most this many items; a larger batch for one edge is split.
RECEIPT_MAX_ITEMS = 5000


def event_id_of(payload: bytes) -> UUID | None:
    match = _EVENT_ID.search(payload[:4096])
    if match is None:
        return None
    try:
        return UUID(match.group(1).decode())
    except ValueError:
        return None


def receipts_for(items: Iterable[tuple[str, object]], now: datetime) -> list[tuple[str, bytes]]:
    """(topic, payload) of the receipts for committed ``(topic, payload)`` items, one per edge
    (split every RECEIPT_MAX_ITEMS). Evidence payloads may be anything: the sha256 is in the topic."""
    per_edge: dict[tuple[str, str], tuple[list[UUID], list[str]]] = {}
    for topic, payload in items:
        parts = parse_topic(topic)
        if parts is None or parts.edge is None:
            continue
        # Hazard events and actuation records are both keyed by their event_id.
        if parts.kind in ("event", "actuation") and isinstance(payload, bytes | bytearray):
            event_id = event_id_of(bytes(payload))
            if event_id is not None:
                per_edge.setdefault((parts.site, parts.edge), ([], []))[0].append(event_id)
        elif parts.kind == "evidence" and parts.sha256 is not None:
            per_edge.setdefault((parts.site, parts.edge), ([], []))[1].append(parts.sha256)
    out: list[tuple[str, bytes]] = []
    for (site, edge), (events, blobs) in per_edge.items():
        for start in range(0, max(len(events), len(blobs)), RECEIPT_MAX_ITEMS):
            receipt = Receipt(site=site, edge=edge, at=now, event_ids=events[start:start + RECEIPT_MAX_ITEMS],
                              evidence=blobs[start:start + RECEIPT_MAX_ITEMS])
            out.append((receipt_topic(site, edge), receipt.to_wire()))
    return out


def hellos_for(site: str, edges: Iterable[str], now: datetime) -> list[tuple[str, bytes]]:
    """The retained hello for each edge of the site: receipts offered until now + RECEIPTS_VALID."""
    return [
        (hello_topic(site, edge),
         CentralHello(site=site, edge=edge, at=now, capabilities=[RECEIPTS_CAPABILITY],
                      receipts_until=now + RECEIPTS_VALID).to_wire())
        for edge in edges
    ]
