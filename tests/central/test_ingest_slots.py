"""`sharpeyes central ingest --slots N`: real workers on a real Mosquitto and PostgreSQL, one of them
killed with kill -9 for good (issue 27).

On a shared subscription Mosquitto keeps giving a dead member with a persistent session its share
(queued) until a client with its id comes back. With slots the client ids belong to lease rows,
not to workers: a survivor takes the dead worker's slot over, connects with its id and drains
what was queued for it. Publishing is plain paho at QoS 1 (no edge receipts to resend anything),
so whatever the broker stranded would be missing here.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select, text

from broker.mosquitto import MosquittoProcess
from broker.payloads import Phase, Receipt
from broker.topics import event_topic, receipt_topic
from central.store.db import make_engine
from central.store.migrate import upgrade
from central.store.tables import DeadLetter, Event, Incident
from central.workflow.vocabulary import Condition
from tests.central.factories import EDGE, SITE, T0, event, wire
from tests.support import PostgresUnavailable, fresh_postgres_database, spawn_sharpeyes, stop_process, wait_until


@pytest.fixture
def database() -> Iterator[tuple[str, Engine]]:
    try:
        with fresh_postgres_database() as url:
            engine = make_engine(url)
            upgrade(engine)  # before the workers: they would all migrate at once
            try:
                yield url, engine
            finally:
                engine.dispose()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


class Workers:
    """`central ingest` processes on one pool of slots; stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, tmp_path: Path, url: str, engine: Engine, broker_ports: list[int], slots: int,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path, self.url, self.engine, self.slots = tmp_path, url, engine, slots
        self.prefix = f"t{uuid.uuid4().hex[:6]}"
        self.group = f"g{uuid.uuid4().hex[:6]}"
        self.config = tmp_path / "site.yaml"
        self.config.write_text(yaml.safe_dump({
            "site": SITE, "broker": {"host": "127.0.0.1", "port": broker_ports[0], "protocol": "5"},
            "edges": [{"id": EDGE, "cameras": [{"id": "street-north", "url": "rtsp://127.0.0.1/a", "grid_cell": "g1"}]}],
            "grid": [{"code": "g1", "name": "Grid 1", "workers": ["wang-fang"]}],
            "workers": [{"id": "wang-fang", "name": "W"}],
        }))
        self.addresses = [a for port in broker_ports for a in ("--broker-address", f"127.0.0.1:{port}")] \
            if len(broker_ports) > 1 else []
        monkeypatch.setenv("SHARPEYES_VAR_DIR", str(tmp_path / "var"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            n = len(self.procs)
            self.procs.append(spawn_sharpeyes(
                ["central", "ingest", "--config", str(self.config), "--database-url", self.url,
                 "--evidence-dir", str(self.tmp_path / "evidence"), "--slots", str(self.slots),
                 "--slot-prefix", self.prefix, "--shared-group", self.group, *self.addresses], self.log(n)))

    def log(self, n: int) -> Path:
        return self.tmp_path / f"worker-{n}.log"

    def holders(self) -> dict[int, str]:
        """Live slot leases of the pool: slot -> holder ("host:pid:tag")."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, holder FROM leases WHERE expires_at > :now AND name LIKE :pattern"),
                                {"now": datetime.now(UTC), "pattern": f"ingest-slot-%@{self.prefix}"}).all()
        return {int(re.match(r"ingest-slot-(\d+)@", name).group(1)): holder for name, holder in rows}  # type: ignore[union-attr]

    def pid_of(self, holder: str) -> int:
        return int(holder.split(":")[-2])

    def subscribed(self, n: int) -> int:
        """How many of worker N's connections (slots x brokers) are subscribed, from its log."""
        return len(re.findall(r"MQTT subscribed on", self.log(n).read_text(errors="replace")))

    def each_holds_one(self, count: int) -> bool:
        for n, proc in enumerate(self.procs):
            assert proc.poll() is None, f"worker {n} exited:\n{self.log(n).read_text()[-3000:]}"
        holders = self.holders()
        pids = {self.pid_of(h) for h in holders.values()}
        return len(holders) == self.slots and len(pids) == count

    def outcomes(self, n: int) -> dict[str, int]:
        """Worker N's outcome counts, from the line it logs when stopped cleanly."""
        found = re.findall(r"outcomes: (.*)", self.log(n).read_text(errors="replace"))
        assert found, f"worker {n} logged no outcomes:\n{self.log(n).read_text()[-3000:]}"
        return {k: int(v) for k, v in (item.split("=") for item in found[-1].split(", ") if "=" in item)}

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc, 30)


def publish(port: int, messages: list[bytes], client_id: str | None = None) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(event_topic(SITE, EDGE), m, qos=1) for m in messages]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def starts(tag: str, n: int) -> list[bytes]:
    """N start events of N incidents, each in a zone of its own (no episode merging)."""
    return [wire(event(f"{tag}-{i}", Phase.START, zone=f"{tag}-z{i}")) for i in range(n)]


def stored(engine: Engine, tag: str) -> tuple[int, int, int]:
    """(event rows, distinct event ids, events folded into incidents) of the tag's incidents."""
    with engine.connect() as conn:
        mine = Incident.incident_key.like(f"{tag}-%")
        rows, distinct = conn.execute(select(func.count(), func.count(func.distinct(Event.event_id)))
                                      .select_from(Event).join(Incident).where(mine)).one()
        folded = conn.scalar(select(func.coalesce(func.sum(Incident.event_count), 0)).where(mine))
    return int(rows), int(distinct), int(folded or 0)


@pytest.mark.timeout(400)
def test_a_worker_killed_for_good_strands_nothing(database: tuple[str, Engine], fresh_mosquitto: MosquittoProcess,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, engine = database
    workers = Workers(tmp_path, url, engine, [fresh_mosquitto.port], 3, monkeypatch)
    try:
        workers.start(3)
        wait_until(lambda: workers.each_holds_one(3), 180, interval=0.5, what="three workers to hold one slot each")
        wait_until(lambda: all(workers.subscribed(n) >= 1 for n in range(3)), 60, interval=0.5,
                   what="every worker subscribed")
        before, after = starts("before", 300), starts("after", 300)
        publish(fresh_mosquitto.port, before)
        wait_until(lambda: stored(engine, "before")[0] >= 60, 120, interval=0.2, what="the stream under way")

        victim_slot, victim = next(iter(sorted(workers.holders().items())))
        proc = next(p for p in workers.procs if p.pid == workers.pid_of(victim))
        proc.kill()  # SIGKILL; its receiving process exits as its pipe closes
        proc.wait(30)
        # The dead member is still in the group: a third of these are queued in its slot's session.
        publish(fresh_mosquitto.port, after)

        wait_until(lambda: stored(engine, "before")[1] == len(before) and stored(engine, "after")[1] == len(after),
                   240, interval=0.5, what="every event stored")
        # Once each: one row per event id, each folded into its incident once.
        assert stored(engine, "before") == (len(before),) * 3
        assert stored(engine, "after") == (len(after),) * 3
        new_holder = wait_until(lambda: workers.holders().get(victim_slot), 60, what="the dead worker's slot held")
        assert new_holder != victim
        assert workers.pid_of(new_holder) in {p.pid for p in workers.procs if p.poll() is None}
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(DeadLetter)) == 0
    finally:
        workers.close()
    log = "".join(workers.log(n).read_text(errors="replace") for n in range(3))
    assert f"slot {victim_slot} ({workers.prefix}-slot-{victim_slot}): taken over from {victim}" in log


@pytest.mark.timeout(400)
def test_an_episode_spread_over_three_workers_makes_one_correct_incident(
        database: tuple[str, Engine], fresh_mosquitto: MosquittoProcess, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Start, two updates and end of each incident published back to back: Mosquitto hands
    consecutive messages of the group to its members in turn, so each episode's events are stored
    by different workers at nearly the same moment."""
    url, engine = database
    workers = Workers(tmp_path, url, engine, [fresh_mosquitto.port], 3, monkeypatch)
    incidents = 60
    messages: list[bytes] = []
    for i in range(incidents):
        key, zone = f"ep-{i}", f"ep-z{i}"
        messages += [wire(event(key, Phase.START, zone=zone, seq=1, score=0.6)),
                     wire(event(key, Phase.UPDATE, zone=zone, seq=2, observed_after_s=10, score=0.9)),
                     wire(event(key, Phase.UPDATE, zone=zone, seq=3, observed_after_s=20, score=0.7)),
                     wire(event(key, Phase.END, zone=zone, seq=4, observed_after_s=30, score=0.5))]
    try:
        workers.start(3)
        wait_until(lambda: workers.each_holds_one(3), 180, interval=0.5, what="three workers to hold one slot each")
        wait_until(lambda: all(workers.subscribed(n) >= 1 for n in range(3)), 60, interval=0.5,
                   what="every worker subscribed")
        publish(fresh_mosquitto.port, messages)
        wait_until(lambda: stored(engine, "ep")[0] == len(messages), 180, interval=0.5, what="every event stored")
        assert stored(engine, "ep") == (len(messages),) * 3
        with engine.connect() as conn:
            rows = conn.execute(select(Incident.incident_key, Incident.event_count, Incident.condition,
                                       Incident.started_at, Incident.ended_at, Incident.last_observed_at,
                                       Incident.max_score, Incident.episode_count)
                                .where(Incident.incident_key.like("ep-%"))).all()
            assert conn.scalar(select(func.count()).select_from(DeadLetter)) == 0
        assert len(rows) == incidents  # one incident per episode, none filed twice
        for row in rows:
            assert (row.event_count, row.episode_count, row.condition) == (4, 1, Condition.CLEARED), row
            assert row.started_at == T0 and row.ended_at == row.last_observed_at == T0 + timedelta(seconds=30), row
            assert row.max_score == pytest.approx(0.9), row
    finally:
        workers.close()
    # Every worker stored a share: the episodes really were spread.
    shares = [workers.outcomes(n).get("event", 0) for n in range(3)]
    assert sum(shares) == len(messages) and min(shares) > 0, shares


@pytest.mark.timeout(400)
def test_two_core_brokers_each_slot_on_both(database: tuple[str, Engine], fresh_mosquitto: MosquittoProcess,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A core and its standby: each slot's session exists on both before traffic reaches the standby,
    so what arrives there (the districts failed over) is stored, also while a dead worker's slot
    waits to be taken over; receipts go back through the broker the event came in on."""
    url, engine = database
    standby = MosquittoProcess(data_dir=tmp_path / "standby").start()
    workers = Workers(tmp_path, url, engine, [fresh_mosquitto.port, standby.port], 2, monkeypatch)
    receipts: list[str] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    lock = threading.Lock()

    def on_receipt(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            receipts.extend(str(e) for e in Receipt.model_validate_json(msg.payload).event_ids)

    listener.on_message = on_receipt
    try:
        listener.connect("127.0.0.1", standby.port)
        listener.subscribe(receipt_topic(SITE, EDGE), qos=1)
        listener.loop_start()
        workers.start(2)
        wait_until(lambda: workers.each_holds_one(2), 180, interval=0.5, what="two workers to hold one slot each")
        # One connection per slot and broker: two each.
        wait_until(lambda: all(workers.subscribed(n) >= 2 for n in range(2)), 60, interval=0.5,
                   what="each worker subscribed on both brokers")
        first = starts("standby", 100)
        publish(standby.port, first)
        publish(fresh_mosquitto.port, starts("core", 100))
        wait_until(lambda: stored(engine, "standby")[1] == 100 and stored(engine, "core")[1] == 100, 120,
                   interval=0.5, what="what both brokers got stored")
        first_ids = {str(event_id) for event_id in _event_ids(first)}
        wait_until(lambda: first_ids <= set(receipts), 60, what="receipts on the standby for its events")
        with lock:
            assert not set(receipts) - first_ids, "receipts for the core's events came through the standby"

        victim_slot, victim = next(iter(sorted(workers.holders().items())))
        proc = next(p for p in workers.procs if p.pid == workers.pid_of(victim))
        proc.kill()
        proc.wait(30)
        later = starts("failover", 200)
        publish(standby.port, later)  # half of it queued in the dead worker's session on the standby
        wait_until(lambda: stored(engine, "failover")[1] == 200, 240, interval=0.5, what="every event stored")
        assert stored(engine, "failover") == (200, 200, 200)
        assert stored(engine, "standby") == (100, 100, 100) and stored(engine, "core") == (100, 100, 100)
        survivor = wait_until(lambda: workers.holders().get(victim_slot), 60, what="the dead worker's slot held")
        assert survivor != victim
        # The survivor runs both slots on both brokers.
        n = next(i for i, p in enumerate(workers.procs) if p.pid == workers.pid_of(survivor))
        wait_until(lambda: workers.subscribed(n) >= 4, 60, interval=0.5, what="the survivor on both brokers twice")
    finally:
        listener.loop_stop()
        listener.disconnect()
        workers.close()
        standby.stop()


def _event_ids(messages: list[bytes]) -> list[str]:
    from broker.payloads import HazardEvent

    return [str(HazardEvent.model_validate_json(m).event_id) for m in messages]


def test_slots_and_a_fixed_client_id_do_not_mix(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"site": SITE, "broker": {"host": "127.0.0.1", "port": 1, "protocol": "5"},
                                      "edges": []}))
    base = ["central", "ingest", "--config", str(config)]
    cases = [
        ([], "give --slots N"),
        (["--slots", "3", "--mqtt-client-id", "w1"], "not both"),
        (["--slots", "3", "--shared-group", ""], "--slots needs a shared subscription group"),
        (["--mqtt-client-id", "w1", "--slot-prefix", "p"], "--slot-prefix goes with --slots"),
        (["--slots", "3", "--broker-address", "no-port"], "give HOST:PORT"),
    ]
    for n, (args, says) in enumerate(cases):
        log = tmp_path / f"cli-{n}.log"
        proc = spawn_sharpeyes([*base, *args], log)
        assert proc.wait(120) == 2, log.read_text()
        assert says in log.read_text(), log.read_text()


@pytest.mark.timeout(400)
def test_a_spare_gets_a_slot_handed_back_without_losing_what_flows(
        database: tuple[str, Engine], fresh_mosquitto: MosquittoProcess, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone worker holds both slots; a second one starts and the first hands it one (stop, then
    release: the slot's session keeps queueing between the two), while events keep coming."""
    url, engine = database
    workers = Workers(tmp_path, url, engine, [fresh_mosquitto.port], 2, monkeypatch)
    try:
        workers.start(1)
        wait_until(lambda: workers.each_holds_one(1), 180, interval=0.5, what="the first worker to hold both slots")
        wait_until(lambda: workers.subscribed(0) >= 2, 60, interval=0.5, what="both slots subscribed")
        batches = [starts(f"hand{n}", 50) for n in range(12)]
        done = threading.Event()

        def stream() -> None:
            for batch in batches:
                publish(fresh_mosquitto.port, batch)
                if done.wait(1.0):
                    return

        publisher = threading.Thread(target=stream)
        publisher.start()
        workers.start(1)
        wait_until(lambda: workers.each_holds_one(2), 180, interval=0.5, what="the spare to get a slot")
        publisher.join(120)
        done.set()
        for n in range(len(batches)):
            wait_until(lambda n=n: stored(engine, f"hand{n}")[1] == 50, 120, interval=0.5,
                       what=f"batch {n} stored")
            assert stored(engine, f"hand{n}") == (50, 50, 50)
    finally:
        workers.close()
    assert "handed back for a spare worker" in workers.log(0).read_text(errors="replace")


@pytest.mark.timeout(400)
def test_a_stalled_worker_leaves_its_slot_and_is_not_kicked_back_and_forth(
        database: tuple[str, Engine], fresh_mosquitto: MosquittoProcess, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGSTOP of a worker's main process (its receiving processes run on): past the fence the
    receiving process leaves the broker by itself, a survivor takes the slot over, and the stalled
    worker, resumed, gives the slot up instead of taking the session back."""
    url, engine = database
    workers = Workers(tmp_path, url, engine, [fresh_mosquitto.port], 2, monkeypatch)
    try:
        workers.start(2)
        wait_until(lambda: workers.each_holds_one(2), 180, interval=0.5, what="two workers to hold one slot each")
        wait_until(lambda: all(workers.subscribed(n) >= 1 for n in range(2)), 60, interval=0.5,
                   what="every worker subscribed")
        holders = workers.holders()
        stalled_slot, stalled = sorted(holders.items())[0]
        n_stalled = next(i for i, p in enumerate(workers.procs) if p.pid == workers.pid_of(stalled))
        n_other = 1 - n_stalled
        workers.procs[n_stalled].send_signal(signal.SIGSTOP)
        try:
            publish(fresh_mosquitto.port, starts("stall-a", 100))
            wait_until(lambda: "its lease was not renewed in time" in workers.log(n_stalled).read_text(errors="replace"),
                       60, interval=0.3, what="the stalled worker's receiving process to leave the broker")
            wait_until(lambda: workers.holders().get(stalled_slot, stalled) != stalled, 60, interval=0.3,
                       what="the other worker to take the slot over")
            publish(fresh_mosquitto.port, starts("stall-b", 100))
        finally:
            workers.procs[n_stalled].send_signal(signal.SIGCONT)
        wait_until(lambda: "went to another worker" in workers.log(n_stalled).read_text(errors="replace"), 60,
                   interval=0.3, what="the resumed worker to give the slot up")
        publish(fresh_mosquitto.port, starts("stall-c", 100))
        for tag in ("stall-a", "stall-b", "stall-c"):
            wait_until(lambda tag=tag: stored(engine, tag)[1] == 100, 120, interval=0.5, what=f"{tag} stored")
            assert stored(engine, tag) == (100, 100, 100)
        # The resumed worker is a spare now; it gets a slot back, and nobody was kicked off meanwhile.
        wait_until(lambda: workers.each_holds_one(2), 120, interval=0.5, what="one slot each again")
        assert "MQTT disconnected" not in workers.log(n_other).read_text(errors="replace")
    finally:
        for proc in workers.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        workers.close()
