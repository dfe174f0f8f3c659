"""An ingest worker (`sharpeyes central ingest`): the MQTT ingests of the client ids it holds, one per
core broker, and the leases that decide which client ids those are.

Two ways to name the worker's MQTT sessions:

- ``--slots N``: the client ids are slots shared by all workers (``central.ingest.slots`` has the
  rules and why). Each tick (``slots.RENEW_S``) the worker renews its own row and those of its slots,
  reads the pool's rows and follows the plan: it stops a slot another worker took over, takes free
  ones (a dead worker's, after ``slots.TTL_S``), hands one back to a spare. A slot taken is an
  ``MqttIngest`` per core broker with the slot's client id and a persistent session, so what the
  broker queued for the slot while no one held it is delivered to the new holder. Each of those
  ingests is fenced: its receiving process leaves the broker by itself once the lease has gone
  unrenewed for ``TTL_S - FENCE_MARGIN_S``, even while this process is stalled, so that it is gone
  before another worker may take the slot over.
- ``--mqtt-client-id ID``: one fixed client id, no leases (as before slots).

Several core brokers (``--broker-address``, e.g. a core and its standby, which the district
brokers fail over to): each client id is connected to every one, so its session exists on each
before traffic arrives there. Receipts go back on the connection their message came in on (the
receiving process publishes them); retained hellos and desired configurations go to every broker
(from each ingest: duplicates of a retained message change nothing); task notifications and
commands go through ``FanOut`` to every connected broker, since the district brokers take them
from whichever core they are bridged to.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from broker.connectionconfig import BrokerConfig
from broker.siteconfig import SiteConfig
from central.evidence.store import EvidenceBackend
from central.ingest import slots
from central.ingest.receiver import SESSION_EXPIRY_S
from central.ingest.writer import BATCH_WINDOW_S, IngestDeps, MqttIngest
from central.reporting.metrics import CentralMetrics
from central.store.changes import ChangeFeed
from central.store.clock import Clock
from central.store.lease import LeaderLease, default_holder
from central.store.tables import Lease
from central.workflow.engine import WorkflowEngine
from central.workflow.outgoing import Outgoing
from central.workflow.routing import GridRouter

log = logging.getLogger(__name__)

# Rows of workers gone this long are deleted by the others (a clean stop deletes its own at once).
FORGET_WORKERS_AFTER = timedelta(minutes=10)


def ingest_deps(site: SiteConfig, sessions: sessionmaker[Session], evidence: EvidenceBackend, feed: ChangeFeed,
                workflow: WorkflowEngine | None, metrics: CentralMetrics | None) -> IngestDeps:
    """What every ingest of the process shares (as ``central.server.build_central`` builds it)."""
    return IngestDeps(sessions=sessions, evidence=evidence, router=GridRouter(site), feed=feed, workflow=workflow,
                      hello_edges=(site.site, tuple(edge.id for edge in site.edges)), metrics=metrics)


def follow_site(deps: IngestDeps, site: SiteConfig) -> None:
    """Events of a camera added since the start are filed, not dead-lettered as unknown."""
    deps.router = GridRouter(site)
    deps.hello_edges = (site.site, tuple(edge.id for edge in site.edges))


def parse_address(text: str, base: BrokerConfig) -> BrokerConfig:
    """``HOST:PORT`` as a broker like ``base`` (protocol, credentials, TLS) at that address."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: give HOST:PORT, e.g. mq-core-2.city.internal:8883")
    return base.model_copy(update={"host": host.strip("[]"), "port": int(port)})


class FanOut:
    """Task notifications and commands to every core broker the process is connected to: through
    one connected ingest per address. A message counts as sent when every connected broker took it
    (one that did not makes the sweep send it again later: at least once, never lost)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one sweep of the pending rows at a time in this process
        self._guard = threading.Lock()
        self._ingests: list[MqttIngest] = []

    def add(self, ingest: MqttIngest) -> None:
        with self._guard:
            self._ingests.append(ingest)

    def remove(self, ingest: MqttIngest) -> None:
        with self._guard:
            if ingest in self._ingests:
                self._ingests.remove(ingest)

    def publish(self, topic: str, payload: bytes, qos: int) -> bool:
        return self.publish_many([Outgoing(topic, payload, qos)])[0]

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        if not messages:
            return []
        with self._guard:
            ingests = list(self._ingests)
        per_address: dict[str, MqttIngest] = {}
        for ingest in ingests:
            if ingest.connected:
                per_address.setdefault(ingest.address, ingest)
        if not per_address:
            return [False] * len(messages)
        results = [ingest.publish_many(messages) for ingest in per_address.values()]
        return [all(column) for column in zip(*results, strict=True)]


@dataclass
class WorkerOptions:
    brokers: list[BrokerConfig]
    shared_group: str | None
    names: slots.SlotNames | None = None  # --slots; None: the fixed client_id
    client_id: str | None = None
    batch_window_s: float = BATCH_WINDOW_S
    session_expiry_s: int = SESSION_EXPIRY_S
    ttl_s: float = slots.TTL_S
    renew_s: float = slots.RENEW_S
    fence_margin_s: float = slots.FENCE_MARGIN_S


@dataclass
class _Slot:
    client_id: str
    ingests: list[MqttIngest]
    lease: LeaderLease | None


class IngestWorker:
    def __init__(self, deps: IngestDeps, options: WorkerOptions, clock: Clock | None = None,
                 holder: str | None = None) -> None:
        if (options.names is None) == (options.client_id is None):
            raise ValueError("give slot names or a fixed client id, not both")
        if not options.brokers:
            raise ValueError("at least one broker")
        self.deps, self.options = deps, options
        self.clock = clock or Clock()
        self.holder = holder or default_holder()
        self.fanout = FanOut()
        self.outcomes: Counter[str] = Counter()
        self._outcome_lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._free_since: dict[int, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._presence: LeaderLease | None = None
        self._ticks = 0
        self._warned_strange: tuple[int, ...] = ()
        self._spare_logged = False
        self.takeovers = 0  # slots taken whose previous holder did not hand them back

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        names = self.options.names
        if names is None:
            assert self.options.client_id is not None
            self._start_slot(0, self.options.client_id, None, fenced=False)
            return
        self._presence = LeaderLease(self.deps.sessions, names.worker(uuid.uuid4().hex[:8]), self.options.ttl_s,
                                     self.clock, holder=self.holder)
        self._thread = threading.Thread(target=self._run, name="ingest-slots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Leave the brokers (the sessions stay, with what is queued in them), then hand the slots back
        so that other workers take them at their next tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._slots_lock:
            held = dict(self._slots)
            self._slots.clear()
        self._stop_ingests([ingest for slot in held.values() for ingest in slot.ingests])
        for slot in held.values():
            if slot.lease is not None:
                slot.lease.release()
        if self._presence is not None:
            self._presence.release()
        log.info("ingest worker %s stopped; outcomes: %s", self.holder, self.summary())

    def summary(self) -> str:
        with self._outcome_lock:
            return ", ".join(f"{kind}={count}" for kind, count in sorted(self.outcomes.items())) or "none"

    @property
    def held(self) -> list[int]:
        with self._slots_lock:
            return sorted(self._slots)

    def client_ids(self) -> list[str]:
        with self._slots_lock:
            return [self._slots[k].client_id for k in sorted(self._slots)]

    def ingests(self) -> list[MqttIngest]:
        with self._slots_lock:
            return [ingest for k in sorted(self._slots) for ingest in self._slots[k].ingests]

    @property
    def connected(self) -> bool:
        """Every ingest of every held slot subscribed (a spare, holding none, is not)."""
        ingests = self.ingests()
        return bool(ingests) and all(ingest.connected for ingest in ingests)

    @property
    def backlog(self) -> int:
        return sum(ingest.backlog for ingest in self.ingests())

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            time.sleep(0.1)
        return True

    # -- the slots' ingests ------------------------------------------------------------------------

    def _count(self, _topic: str, outcome: object) -> None:
        kind = getattr(outcome, "kind", "?")
        with self._outcome_lock:
            self.outcomes[kind] += 1

    def _start_slot(self, slot: int, client_id: str, lease: LeaderLease | None, fenced: bool,
                    deadline: float | None = None) -> None:
        o = self.options
        ingests = []
        for broker in o.brokers:
            ingest = MqttIngest(broker, self.deps, client_id, shared_group=o.shared_group,
                                batch_window_s=o.batch_window_s, session_expiry_s=o.session_expiry_s, fenced=fenced,
                                outlet=self.fanout)
            ingest.on_outcome = self._count
            if deadline is not None:
                ingest.hold_until(deadline)
            self.fanout.add(ingest)
            ingest.start()
            ingests.append(ingest)
        with self._slots_lock:
            self._slots[slot] = _Slot(client_id, ingests, lease)

    def _stop_ingests(self, ingests: list[MqttIngest]) -> None:
        for ingest in ingests:
            self.fanout.remove(ingest)
        threads = [threading.Thread(target=ingest.stop, daemon=True) for ingest in ingests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)

    def _drop_slot(self, slot: int) -> _Slot | None:
        with self._slots_lock:
            held = self._slots.pop(slot, None)
        if held is not None:
            self._stop_ingests(held.ingests)
        return held

    # -- the lease loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the database is away: the fences take the slots off the broker
                log.exception("ingest slots: could not renew or plan; trying again")
            self._ticks += 1
            # A little jitter, so that workers started together do not tick in step forever.
            if self._stop.wait(self.options.renew_s * random.uniform(0.9, 1.0)):
                return

    def _tick(self) -> None:
        names = self.options.names
        assert names is not None and self._presence is not None
        self._presence.acquire()  # before the slots: a dead worker's row runs out before its slots do
        # Renew first, before anything that may take a while.
        with self._slots_lock:
            running = dict(self._slots)
        for k, slot in running.items():
            self._renew(k, slot)
        now = self.clock.now()
        rows = self._read_rows(names)
        with self._slots_lock:
            running_now = set(self._slots)
        pool = slots.read_pool(names, self.holder, rows, now)
        for k, holder in pool.holders.items():
            if holder is None and k not in running_now:
                row = pool.rows.get(k)
                self._free_since.setdefault(k, row.expires_at if row is not None else now)
            else:
                self._free_since.pop(k, None)
        decided = slots.plan(names, self.holder, rows, now, running_now, self._free_since, settled=self._ticks > 0)
        for k in decided.stop:
            log.warning("slot %d (%s): %s holds it now; this worker leaves it", k, names.client_id(k),
                        pool.rows[k].holder)
            self._drop_slot(k)
        for k in decided.release:
            held = self._drop_slot(k)
            if held is not None and held.lease is not None:
                held.lease.release()
            log.info("slot %d (%s): handed back for a spare worker", k, names.client_id(k))
        for k in decided.take:
            self._take(names, k, pool.rows.get(k), now)
        if decided.strange and decided.strange != self._warned_strange:
            log.warning("slots %s of %r are in use but this worker runs with --slots %d: start every worker "
                        "with the same --slots", list(decided.strange), names.prefix, names.slots)
        self._warned_strange = decided.strange
        with self._slots_lock:
            spare = not self._slots
        if spare and not self._spare_logged and self._ticks > 0:
            log.info("ingest worker %s: every slot is held; waiting as a spare", self.holder)
        self._spare_logged = spare
        self._forget_gone_workers(names, rows, now)

    def _deadline(self, started: float) -> float:
        return started + self.options.ttl_s - self.options.fence_margin_s

    def _renew(self, k: int, slot: _Slot) -> None:
        assert slot.lease is not None
        started = time.monotonic()
        if slot.lease.acquire():
            for ingest in slot.ingests:
                ingest.hold_until(self._deadline(started))
            return
        log.warning("slot %d (%s): the lease went to another worker; this worker leaves it", k, slot.client_id)
        self._drop_slot(k)

    def _take(self, names: slots.SlotNames, k: int, row: slots.LeaseRow | None, now: datetime) -> None:
        lease = LeaderLease(self.deps.sessions, names.lease(k), self.options.ttl_s, self.clock, holder=self.holder)
        started = time.monotonic()
        if not lease.acquire():
            return  # another worker was quicker
        self._free_since.pop(k, None)
        if row is not None and row.holder != self.holder and row.expires_at <= now:
            self.takeovers += 1
            log.warning("slot %d (%s): taken over from %s, whose lease ran out at %s; draining what the broker "
                        "queued for it", k, names.client_id(k), row.holder, row.expires_at.isoformat())
        else:
            log.info("slot %d (%s): taken", k, names.client_id(k))
        self._start_slot(k, names.client_id(k), lease, fenced=True, deadline=self._deadline(started))

    def _read_rows(self, names: slots.SlotNames) -> list[slots.LeaseRow]:
        with self.deps.sessions() as session:
            found = session.execute(select(Lease.name, Lease.holder, Lease.expires_at)
                                    .where(Lease.name.startswith("ingest-"),
                                           Lease.name.endswith(names.suffix, autoescape=True))).all()
        return [slots.LeaseRow(name, holder, expires_at) for name, holder, expires_at in found]

    def _forget_gone_workers(self, names: slots.SlotNames, rows: list[slots.LeaseRow], now: datetime) -> None:
        gone = [r.name for r in rows if (parsed := names.parse(r.name)) is not None and parsed[0] == "worker"
                and r.expires_at < now - FORGET_WORKERS_AFTER]
        if not gone:
            return
        with self.deps.sessions() as session:
            session.execute(delete(Lease).where(Lease.name.in_(gone), Lease.expires_at < now - FORGET_WORKERS_AFTER))
            session.commit()
