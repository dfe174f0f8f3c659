"""End-to-end receipts on real parts: the edge forgets an event only when central has it.

The broker is killed (-9) while central is down and holding nothing yet: Mosquitto writes its
persistence only every autosave interval, so what it held for central's session is gone after the
restart. The edge still has every event (the broker's PUBACK only marked them sent), resends what
central does not receipt in time, and central's dedup makes the resends harmless: lost 0, filed
twice 0.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from broker.connectionconfig import BrokerConfig
from broker.topics import event_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import OutboxPublisher
from tests.central.factories import EDGE, SITE, event, wire
from tests.central.test_mqtt_ingest import _central
from tests.support import wait_until

EVENTS = 300


def _edge(broker_port: int, outbox: Outbox) -> OutboxPublisher:
    publisher = OutboxPublisher(BrokerConfig(host="127.0.0.1", port=broker_port), f"sharpeyes-edge-{SITE}-{EDGE}",
                                outbox, username=EDGE, receipt_timeout_s=2.0)
    publisher.follow_central(SITE, EDGE, lambda topic, payload: None)  # as EdgeNode does, without commands
    return publisher


def _stored(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            total, distinct = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")).one()
    finally:
        engine.dispose()
    return int(total), int(distinct)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_broker_kill9_while_central_is_down_loses_nothing(tmp_path: Path, fresh_mosquitto) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    central = _central(url, tmp_path, fresh_mosquitto.port, client_id=f"central-{uuid.uuid4().hex[:6]}")
    outbox = Outbox(tmp_path / "outbox.db")
    edge = _edge(fresh_mosquitto.port, outbox)
    edge.start()
    try:
        wait_until(lambda: edge.receipts_active, 20, what="central's hello offering receipts")
        central.close()  # central's persistent session stays on the broker, collecting for it

        events = [event(f"k-receipt-{i}") for i in range(EVENTS)]
        outbox.put_many([OutboxMessage(event_topic(SITE, EDGE), wire(e), "event", str(e.event_id)) for e in events])
        wait_until(lambda: outbox.awaiting_receipt() == EVENTS, 60, what="the broker to acknowledge every event")
        assert outbox.depth()[0] == EVENTS  # acknowledged by the broker, still kept: no receipt yet

        fresh_mosquitto.kill()
        fresh_mosquitto.start()
        central = _central(url, tmp_path, fresh_mosquitto.port, client_id=central.ingest.client_id)
        wait_until(lambda: outbox.depth()[0] == 0, 120, interval=0.5, what="central's receipts for every event")
        total, distinct = _stored(url)
        assert (total, distinct) == (EVENTS, EVENTS), f"stored {total} rows for {distinct} events of {EVENTS}"
        assert edge.receipted == EVENTS
    finally:
        edge.stop()
        central.close()
        outbox.close()
