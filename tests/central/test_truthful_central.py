"""Central tells the truth about itself and files only what is its own: /readyz with reasons,
events from unknown sites, edges or cameras as dead letters, dead letters of bounded size."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

from broker.topics import event_topic
from central.api.routes_ops import READY_BACKLOG_MAX
from central.ingest.apply import DEAD_LETTER_PREFIX
from central.server import build_central
from central.store.tables import DeadLetter, Incident
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, event, site_config, wire


@pytest.mark.parametrize(("origin", "reason"), [
    ({"camera": "not-a-camera"}, "unknown camera 'not-a-camera': not a camera of edge 'edge-1'"),
    ({"edge": "edge-9"}, "unknown edge 'edge-9'"),
    ({"site": "other-site"}, "unknown site 'other-site': this central serves site 'demo'"),
], ids=["camera", "edge", "site"])
def test_an_event_from_an_unknown_origin_is_a_dead_letter_not_an_incident(store: Store, origin: dict,
                                                                           reason: str) -> None:
    site, edge = origin.get("site", SITE), origin.get("edge", EDGE)
    e = event(f"k-unknown-{uuid.uuid4().hex[:6]}", site=site, edge=edge, camera=origin.get("camera", "street-north"))
    outcome = store.handle(event_topic(site, edge), wire(e))
    assert outcome.kind == "dead_letter" and reason in (outcome.reason or "")
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0
        [letter] = s.scalars(select(DeadLetter)).all()
        assert reason in letter.reason


def test_a_huge_malformed_message_keeps_a_bounded_prefix_with_its_hash_and_size(store: Store) -> None:
    payload = b'{"schema": "sharpeyes.event/1", "junk": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    outcome = store.handle(event_topic(SITE, EDGE), payload)
    assert outcome.kind == "dead_letter"
    with store.sessions() as s:
        [letter] = s.scalars(select(DeadLetter)).all()
    assert len(letter.payload) == DEAD_LETTER_PREFIX and payload.startswith(letter.payload)
    assert letter.size == len(payload) and letter.payload_sha256 == hashlib.sha256(payload).hexdigest()


def test_the_dead_letter_list_says_a_payload_was_cut(database_url: str, tmp_path: Path) -> None:
    built = build_central(site_config(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False)
    with built.ctx.sessions() as s:
        s.add(DeadLetter(topic="t", payload=b"abc", reason="r", received_at=event("k").observed_at,
                         payload_sha256="0" * 64, size=10_000))
        s.commit()
    with TestClient(built.app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw"}).json()
        listed = client.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {token['access_token']}"})
    built.close()
    [item] = listed.json()["items"]
    assert item["size"] == 10_000 and item["truncated"] is True and item["payload_sha256"] == "0" * 64


def test_readyz_is_ready_only_with_a_broker_a_writable_database_and_no_backlog(database_url: str,
                                                                             tmp_path: Path) -> None:
    built = build_central(site_config(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False)
    try:
        with TestClient(built.app) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True
            assert ready.json()["broker_connected"] is None  # an API-only process does not ingest
            assert set(ready.json()["leader"]) == {"deadlines", "webhooks"}

            built.ctx.mqtt_connected = lambda: False
            built.ctx.ingest_backlog = lambda: READY_BACKLOG_MAX + 1
            lost = client.get("/readyz")
            assert lost.status_code == 503 and lost.json()["ready"] is False
            problems = " | ".join(lost.json()["problems"])
            assert "broker not connected" in problems and "ingest backlog" in problems
            assert client.get("/healthz").status_code == 200  # alive all the same: do not restart it

            built.ctx.mqtt_connected, built.ctx.ingest_backlog = (lambda: True), (lambda: 0)
            built.ctx.sessions = sessionmaker(_read_only(database_url))
            stuck = client.get("/readyz")
            assert stuck.status_code == 503 and stuck.json()["database_writable"] is False
            assert stuck.json()["problems"][0].startswith("database not writable")
    finally:
        built.close()


def _read_only(url: str):  # type: ignore[no-untyped-def]
    """The same database through a connection that may not write (a full disk or a standby look so)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://")
                         else url, connect_args={"options": "-c default_transaction_read_only=on"})


def test_an_edges_heartbeat_problems_are_stored_and_listed(store: Store) -> None:
    from datetime import UTC, datetime

    from broker.payloads import EdgeHeartbeat, EdgeStatus
    from broker.topics import status_topic
    from central.fleet.edge_health import edge_problems
    from central.store.tables import EdgeStatusRow

    beat = EdgeHeartbeat(interval_s=60, outbox_messages=5, outbox_bytes=100, dropped={"clip": 3, "snapshot": 0},
                         publish_refused="not authorized (0x87): check the ACL for edge-1", dead_letters=2,
                         disk_full=True)
    problems = edge_problems(beat)
    assert problems == [
        "broker refuses its messages: not authorized (0x87): check the ACL for edge-1",
        "2 dead letter(s) on the edge: `sharpeyes edge outbox --dead`",
        "disk full: dropping evidence, then updates, to keep the newest events",
        "dropped by the outbox policy: 3 clip",
    ]
    status = EdgeStatus(site=SITE, edge=EDGE, state="online", at=datetime.now(UTC), heartbeat=beat)
    assert store.handle(status_topic(SITE, EDGE), status.model_dump_json(by_alias=True).encode()).kind == "status"
    with store.sessions() as s:
        assert s.get(EdgeStatusRow, (SITE, EDGE)).problems == problems
    assert edge_problems(EdgeHeartbeat(interval_s=60, outbox_messages=0, outbox_bytes=0)) == []
