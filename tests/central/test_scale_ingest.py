"""Ingest that loses nothing and scales: two workers on a shared subscription over one PostgreSQL,
and ``kill -9`` of an ingest worker in the middle of a burst."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from broker.payloads import Phase
from broker.topics import event_topic
from central.server import build_central
from central.store.db import make_engine
from central.store.tables import Event, Incident
from tests.central.factories import EDGE, SITE, event, site_config, wire
from tests.support import PostgresUnavailable, fresh_postgres_database, wait_until

UPDATES = 4  # per incident: start, 4 updates, end


def burst(incidents: int, tag: str) -> list[bytes]:
    """Each incident on its own zone (no episode merging), its events interleaved with the others'."""
    per: list[list[bytes]] = []
    for n in range(incidents):
        key, zone = f"{tag}-{n}", f"z{n}"
        seq = [wire(event(key, Phase.START, zone=zone, seq=1))]
        seq += [wire(event(key, Phase.UPDATE, zone=zone, seq=2 + i, observed_after_s=5 * (i + 1))) for i in range(UPDATES)]
        seq.append(wire(event(key, Phase.END, zone=zone, seq=2 + UPDATES, observed_after_s=60)))
        per.append(seq)
    return [msg for group in zip(*per, strict=False) for msg in group]


def publish_all(port: int, messages: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"burst-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(event_topic(SITE, EDGE), m, qos=1) for m in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def counts(url: str, tag: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            events = conn.scalar(select(func.count()).select_from(Event).join(Incident)
                                 .where(Incident.incident_key.like(f"{tag}-%"))) or 0
            incidents = conn.scalar(select(func.count()).select_from(Incident)
                                    .where(Incident.incident_key.like(f"{tag}-%"))) or 0
            folded = conn.scalar(select(func.coalesce(func.sum(Incident.event_count), 0))
                                 .where(Incident.incident_key.like(f"{tag}-%"))) or 0
        return events, incidents, folded
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    try:
        with fresh_postgres_database() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.timeout(120)
def test_two_workers_share_the_load_with_nothing_lost_or_filed_twice(postgres_url: str, tmp_path: Path,
                                                                      mosquitto) -> None:  # type: ignore[no-untyped-def]
    workers = []
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    for name in ("w1", "w2"):
        built = build_central(site_config(broker_port=mosquitto.port), postgres_url, tmp_path / "evidence",
                              tmp_path / "var", client_id=f"share-{name}-{uuid.uuid4().hex[:6]}",
                              shared_group=f"central-{uuid.uuid4().hex[:6]}" if not workers else
                              workers[0].ingest.shared_group)
        assert built.ingest is not None

        def count(topic: str, outcome: object, name: str = name) -> None:
            if not topic.endswith("/event"):
                return  # retained status and health of other tests' edges on the shared broker
            with lock:
                seen[name] += 1
                seen[outcome.kind] += 1

        built.ingest.on_outcome = count
        built.start_ingest()
        assert built.ingest.wait_connected(10)
        workers.append(built)
    try:
        assert workers[0].ingest.subscriptions()[0].startswith("$share/central-")
        messages = burst(60, "share")
        publish_all(mosquitto.port, messages)
        wait_until(lambda: counts(postgres_url, "share")[0] == len(messages), 60, what="every event stored")
        events, incidents, folded = counts(postgres_url, "share")
        assert (events, incidents, folded) == (len(messages), 60, len(messages))
        with lock:
            # Each message went to exactly one worker, and both did real work.
            assert seen["w1"] + seen["w2"] == len(messages) and seen["duplicate"] == 0
            assert seen["w1"] > len(messages) // 10 and seen["w2"] > len(messages) // 10
    finally:
        for built in workers:
            built.close()


def _write_site(path: Path, port: int) -> None:
    path.write_text(yaml.safe_dump({
        "site": SITE, "broker": {"host": "127.0.0.1", "port": port, "protocol": "5"},
        "edges": [{"id": EDGE, "cameras": [{"id": "street-north", "url": "rtsp://127.0.0.1/a", "grid_cell": "g1"}]}],
        "grid": [{"code": "g1", "name": "Grid 1", "workers": ["wang-fang"]}],
        "workers": [{"id": "wang-fang", "name": "W"}],
    }))


def _children(pid: int) -> list[int]:
    # Each thread lists the children it started; the receiving process comes from a helper thread.
    return [int(p) for task in Path(f"/proc/{pid}/task").iterdir() for p in (task / "children").read_text().split()]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def _start_worker(config: Path, url: str, client_id: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHARPEYES_VAR_DIR": str(tmp_path / "var")}
    return subprocess.Popen(
        [sys.executable, "-m", "sharpeyes", "central", "ingest", "--config", str(config), "--database-url", url,
         "--mqtt-client-id", client_id, "--shared-group", "", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{client_id}.log", "ab"),
    )


@pytest.mark.timeout(180)
def test_kill_9_during_a_burst_loses_nothing_and_files_nothing_twice(database_url: str, tmp_path: Path,
                                                                     mosquitto) -> None:  # type: ignore[no-untyped-def]
    from central.store.migrate import upgrade

    config = tmp_path / "site.yaml"
    _write_site(config, mosquitto.port)
    engine = make_engine(database_url)
    upgrade(engine)  # so that the test can count rows before the worker is up
    engine.dispose()
    client_id = f"kill9-{uuid.uuid4().hex[:6]}"
    worker = _start_worker(config, database_url, client_id, tmp_path)
    try:
        # The persistent session exists once the worker has subscribed; then the burst starts.
        def warmed() -> bool:
            if counts(database_url, "warm")[1]:
                return True
            publish_all(mosquitto.port, [wire(event("warm-0", zone="warm"))])
            return False

        wait_until(warmed, 60, interval=1.0, what="the ingest worker to store a first event")
        messages = burst(500, "kill")
        publisher = threading.Thread(target=publish_all, args=(mosquitto.port, messages))
        publisher.start()
        wait_until(lambda: counts(database_url, "kill")[0] >= 100, 60, interval=0.02, what="the burst under way")
        receivers = _children(worker.pid)
        assert receivers, "the worker has no MQTT receiving process"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # Its receiving process goes with it: left behind, it would hold the burst unacknowledged.
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in receivers), 10,
                   what="the receiving process to exit after the worker")
        publisher.join(60)
        stored_at_kill = counts(database_url, "kill")[0]
        assert stored_at_kill < len(messages), "the worker finished before it was killed; nothing was tested"

        worker = _start_worker(config, database_url, client_id, tmp_path)
        wait_until(lambda: counts(database_url, "kill")[0] == len(messages), 90, interval=0.5,
                   what="every event stored after the restart")
        events, incidents, folded = counts(database_url, "kill")
        # Every event once; each incident folded each of its events exactly once.
        assert (events, incidents, folded) == (len(messages), 500, len(messages))
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)
