"""The MQTT ingest against a real Mosquitto: edge messages in, incidents out, tasks to workers."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from broker.payloads import TaskNotification
from broker.topics import event_topic, evidence_topic, worker_task_topic
from central.server import Central, build_central
from central.workflow.outgoing import Outgoing
from tests.central.factories import EDGE, SITE, event, jpeg_bytes, sha, site_config, wire
from tests.support import wait_until


class Device:
    """A plain MQTT client standing in for an edge or a worker's phone."""

    def __init__(self, port: int, subscribe: str | None = None) -> None:
        self.received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.received.put(msg)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if subscribe:
            subscribed = self.client.subscribe(subscribe, qos=1)
            assert subscribed[0] == mqtt.MQTT_ERR_SUCCESS
            wait_until(lambda: self.client.is_connected(), 5, what="test client connected")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _central(url: str, tmp_path: Path, port: int, protocol: str = "5", client_id: str | None = None) -> Central:
    built = build_central(
        site_config(broker_port=port, protocol=protocol),
        url,
        tmp_path / "evidence",
        tmp_path / "var",
        ingest=True,
        client_id=client_id or f"central-test-{uuid.uuid4().hex[:8]}",
    )
    built.start_ingest()
    assert built.ingest is not None and built.ingest.wait_connected(10), "central did not connect to Mosquitto"
    return built


@pytest.fixture
def worker_phone(mosquitto) -> Iterator[Device]:  # type: ignore[no-untyped-def]
    phone = Device(mosquitto.port, subscribe=worker_task_topic(SITE, "wang-fang"))
    yield phone
    phone.close()


def test_event_and_blob_over_mqtt_become_an_incident_and_a_task(
    database_url: str, tmp_path: Path, mosquitto, worker_phone: Device  # type: ignore[no-untyped-def]
) -> None:
    central = _central(database_url, tmp_path, mosquitto.port)
    edge = Device(mosquitto.port)
    try:
        blob = jpeg_bytes(uuid.uuid4().hex)
        start = event(f"k-mqtt-{uuid.uuid4().hex[:6]}", snapshot=blob)
        edge.publish(event_topic(SITE, EDGE), wire(start))
        edge.publish(evidence_topic(SITE, EDGE, sha(blob)), blob)
        edge.publish(event_topic(SITE, EDGE), wire(start))  # an edge retrying after a lost PUBACK

        with TestClient(central.app) as api:
            token = api.post("/api/v1/auth/token", data={"username": "monitor", "password": "monitor-pw"})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

            def incident_with_evidence() -> dict | None:
                items = api.get("/api/v1/incidents", headers=headers).json()["items"]
                if not items:
                    return None
                detail = api.get(f"/api/v1/incidents/{items[0]['id']}", headers=headers).json()
                return detail if detail["evidence"] and detail["evidence"][0]["available"] else None

            detail = wait_until(incident_with_evidence, 10, what="incident with its snapshot via the API")
            assert detail["incident_key"] == start.incident_key
            assert detail["assigned_worker"] == "wang-fang"
            assert len(detail["events"]) == 1  # the retried event was a duplicate
            assert api.get(f"/api/v1/evidence/{sha(blob)}", params={"original": "true", "reason": "check the upload"},
                           headers=headers).content == blob
            assert api.get("/healthz").json()["mqtt_connected"] is True

        msg = worker_phone.received.get(timeout=10)
        assert msg.topic == worker_task_topic(SITE, "wang-fang")
        note = TaskNotification.model_validate_json(msg.payload)
        assert (note.incident_id, note.worker, note.camera, note.zone) == (detail["id"], "wang-fang", "street-north", "kerb-lane")
        assert note.grid_cell == "g1" and note.snapshot_sha256 == sha(blob)
        assert worker_phone.received.empty()  # one task, not one per event
    finally:
        edge.close()
        central.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_sent_while_central_is_away_arrive_after_it_returns(
    protocol: str, tmp_path: Path, mosquitto  # type: ignore[no-untyped-def]
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    client_id = f"central-away-{uuid.uuid4().hex[:8]}"
    first = _central(url, tmp_path, mosquitto.port, protocol, client_id)
    first.close()  # subscribed once with a persistent session, then gone

    edge = Device(mosquitto.port)
    missed = event(f"k-away-{uuid.uuid4().hex[:6]}", camera="lobby", zone=None)
    edge.publish(event_topic(SITE, EDGE), wire(missed))
    edge.close()

    second = _central(url, tmp_path, mosquitto.port, protocol, client_id)
    try:
        with TestClient(second.app) as api:
            token = api.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw"})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            items = wait_until(
                lambda: api.get("/api/v1/incidents", headers=headers).json()["items"], 10,
                what="the event queued by the broker while central was away",
            )
            assert [i["incident_key"] for i in items] == [missed.incident_key]
    finally:
        second.close()


def test_ingest_reconnects_when_the_broker_comes_back(tmp_path: Path, fresh_mosquitto) -> None:  # type: ignore[no-untyped-def]
    central = _central(f"sqlite:///{tmp_path / 'central.db'}", tmp_path, fresh_mosquitto.port)
    try:
        with TestClient(central.app) as api:
            fresh_mosquitto.stop()
            wait_until(lambda: api.get("/healthz").json()["mqtt_connected"] is False, 10, what="disconnect noticed")
            assert api.get("/healthz").status_code == 200  # the API keeps serving without the broker
            fresh_mosquitto.start()
            wait_until(lambda: api.get("/healthz").json()["mqtt_connected"], 20, what="ingest reconnected")
        edge = Device(fresh_mosquitto.port)
        edge.publish(event_topic(SITE, EDGE), wire(event(f"k-back-{uuid.uuid4().hex[:6]}")))
        edge.close()
        with TestClient(central.app) as api:
            token = api.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw"}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            wait_until(lambda: api.get("/api/v1/incidents", headers=headers).json()["total"] == 1, 10,
                       what="event ingested after the reconnect")
    finally:
        central.close()


def test_message_is_redelivered_when_the_database_failed_before_commit(
    tmp_path: Path, mosquitto, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy.exc import OperationalError

    from central.ingest.service import IngestService

    real_store = IngestService.handle_batch
    failures = {"left": 1}

    def flaky_store(self, items):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT ...", {}, Exception("database is down"))
        return real_store(self, items)

    # The writer stores every burst, of one message or many, through handle_batch.
    monkeypatch.setattr(IngestService, "handle_batch", flaky_store)
    central = _central(f"sqlite:///{tmp_path / 'central.db'}", tmp_path, mosquitto.port)
    assert central.ingest is not None
    central.ingest.retry_delay_s = 0.5
    edge = Device(mosquitto.port)
    try:
        sent = event(f"k-redeliver-{uuid.uuid4().hex[:6]}")
        edge.publish(event_topic(SITE, EDGE), wire(sent))
        with TestClient(central.app) as api:
            token = api.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw"}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            items = wait_until(lambda: api.get("/api/v1/incidents", headers=headers).json()["items"], 15,
                               what="the unacknowledged event delivered again")
        assert failures["left"] == 0
        assert [i["incident_key"] for i in items] == [sent.incident_key]
    finally:
        edge.close()
        central.close()


def test_task_created_while_the_broker_is_down_is_notified_after_it_returns(
    tmp_path: Path, fresh_mosquitto  # type: ignore[no-untyped-def]
) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from sqlalchemy import select

    from central.ingest.service import IngestService
    from central.store.tables import Task
    from central.workflow.routing import GridRouter

    # The worker's phone keeps a persistent session, as a phone that sleeps would.
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    phone_id = f"phone-{uuid.uuid4().hex[:6]}"
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()

    def phone() -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=phone_id, protocol=mqtt.MQTTv5)
        client.on_message = lambda _c, _u, msg: received.put(msg)
        client.connect("127.0.0.1", fresh_mosquitto.port, clean_start=False, properties=props)
        client.loop_start()
        wait_until(client.is_connected, 5, what="phone connected")
        return client

    first = phone()
    sub = first.subscribe(worker_task_topic(SITE, "wang-fang"), qos=1)
    assert sub[0] == mqtt.MQTT_ERR_SUCCESS
    time.sleep(0.3)
    first.disconnect()
    first.loop_stop()

    central = _central(f"sqlite:///{tmp_path / 'central.db'}", tmp_path, fresh_mosquitto.port)
    assert central.ingest is not None
    try:
        fresh_mosquitto.stop()
        wait_until(lambda: not central.ingest.connected, 10, what="central noticed the broker is gone")
        with central.ctx.sessions() as session:
            outcome = IngestService(session, central.ctx.evidence, GridRouter(site_config())).handle(
                event_topic(SITE, EDGE), wire(event(f"k-offline-{uuid.uuid4().hex[:6]}"))
            )
        assert outcome.new_task_ids

        fresh_mosquitto.start()
        wait_until(lambda: central.ingest.connected, 30, what="central reconnected")

        def notified() -> bool:
            with central.ctx.sessions() as session:
                return session.scalar(select(Task.notified_at).where(Task.id == outcome.new_task_ids[0])) is not None

        wait_until(notified, 10, what="task marked notified")
        second = phone()
        try:
            note = TaskNotification.model_validate_json(received.get(timeout=10).payload)
            assert note.task_id == str(outcome.new_task_ids[0]) and note.worker == "wang-fang"
        finally:
            second.disconnect()
            second.loop_stop()
    finally:
        central.close()


def test_central_starts_and_serves_while_the_broker_is_still_down(tmp_path: Path, fresh_mosquitto) -> None:  # type: ignore[no-untyped-def]
    fresh_mosquitto.stop()
    central = build_central(site_config(broker_port=fresh_mosquitto.port), f"sqlite:///{tmp_path / 'central.db'}",
                            tmp_path / "evidence", tmp_path / "var", ingest=True,
                            client_id=f"central-early-{uuid.uuid4().hex[:6]}")
    central.start_ingest()
    try:
        with TestClient(central.app) as api:
            time.sleep(1.5)  # a couple of failed connection attempts
            health = api.get("/healthz")
            assert health.status_code == 200 and health.json()["mqtt_connected"] is False
            fresh_mosquitto.start()
            wait_until(lambda: api.get("/healthz").json()["mqtt_connected"], 30, what="first connection after start-up")
    finally:
        central.close()


def test_blobs_are_checked_and_written_by_the_receiver_and_a_mismatch_is_dead_lettered(
    tmp_path: Path, mosquitto  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import select

    from central.store.tables import DeadLetter, Evidence

    central = _central(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, mosquitto.port)
    edge = Device(mosquitto.port)
    try:
        good, bad = jpeg_bytes(uuid.uuid4().hex), jpeg_bytes(uuid.uuid4().hex)
        edge.publish(evidence_topic(SITE, EDGE, sha(good)), good)
        edge.publish(evidence_topic(SITE, EDGE, "e" * 64), bad)  # bytes that do not hash to the name

        def stored() -> tuple[list[Evidence], list[DeadLetter]] | None:
            with central.ctx.sessions() as session:
                blobs = list(session.scalars(select(Evidence)))
                letters = list(session.scalars(select(DeadLetter)))
            return (blobs, letters) if blobs and letters else None

        blobs, letters = wait_until(stored, 10, what="the blob stored and the bad one dead-lettered")
        assert [(b.sha256, b.size, b.content_type) for b in blobs] == [(sha(good), len(good), "image/jpeg")]
        assert central.ctx.evidence.read(sha(good)) == good
        assert "sha256 mismatch" in letters[0].reason and letters[0].payload == bad
        assert not (tmp_path / "evidence" / "ee" / ("e" * 64)).exists()
    finally:
        edge.close()
        central.close()


def test_an_event_is_stored_as_the_edge_sent_it(database_url: str, tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    import json

    from sqlalchemy import select

    from central.store.tables import Event

    central = _central(database_url, tmp_path, mosquitto.port)
    edge = Device(mosquitto.port)
    try:
        sent = json.loads(wire(event(f"k-raw-{uuid.uuid4().hex[:6]}")))
        # Valid, but not as central would write it: a China Standard Time offset and no model.
        sent["observed_at"] = "2026-05-01T18:00:05+08:00"
        sent["started_at"] = "2026-05-01T18:00:00+08:00"
        sent.pop("model", None)
        edge.publish(event_topic(SITE, EDGE), json.dumps(sent).encode())

        def stored() -> Event | None:
            with central.ctx.sessions() as session:
                return session.scalar(select(Event))

        row = wait_until(stored, 10, what="the event row")
        assert row.payload == sent
        assert row.observed_at.isoformat() == "2026-05-01T10:00:05+00:00"  # the column is normalised to UTC
    finally:
        edge.close()
        central.close()


def test_publish_many_answers_one_result_per_message(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    central = _central(f"sqlite:///{tmp_path / 'central.db'}", tmp_path, mosquitto.port)
    try:
        assert central.ingest is not None
        messages = [Outgoing(worker_task_topic(SITE, f"w{i}"), b"{}", 1) for i in range(3)]
        assert central.ingest.publish_many(messages) == [True, True, True]
        assert central.ingest.publish_many([]) == []
    finally:
        central.close()
