"""One city run: start every part, write the load, strike the four faults, wait for every receipt,
then count from the database and the bucket themselves.

Faults, in order, evenly through the load (``CityOptions.fault_offsets``):
1. one ingest worker killed with kill -9, for good: its slots pass to the survivors;
2. the process holding the deadline lease killed: the other API process must take deadlines over;
3. the core broker killed with kill -9: the district bridges fail over to the standby core, where
   the workers' slot sessions already are;
4. the PostgreSQL replica stopped: statistics must fall back to the primary and say so.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from broker.mosquitto import MosquittoProcess
from sharpeyes.chaos.parts import ChaosError, wait_for
from sharpeyes.city.load import CityEdge, Load, start_edges
from sharpeyes.city.parts import CentralProcess, api, wait_ready, worker
from sharpeyes.city.plan import (
    CORE_KILLED,
    EVENTS_PER_EPISODE,
    LEASE_HOLDER_KILLED,
    PHASES,
    REPLICA_STOPPED,
    WORKER_KILLED,
    CityOptions,
    bridge_section,
    edge_specs,
    phase_at,
    site_yaml,
    workflow_yaml,
)
from sharpeyes.services.postgres_cluster import PostgresCluster
from sharpeyes.services.seaweed import SeaweedS3

BUCKET = "city-evidence"
PREFIX = "evidence"
ADMIN_PASSWORD = "city-admin-password-1"  # the run's own throw-away database
DEADLINE_LEASE = "deadlines"
SLOT_LEASE = "ingest-slot-"  # central.ingest.slots: ingest-slot-K@PREFIX
READ_SOURCE = "x-sharpeyes-read-source"
READ_FALLBACK = "x-sharpeyes-read-fallback"
MAX_LAG_S = 10.0


@dataclass
class PhaseRow:
    phase: str
    written: int
    stored: int
    lost: int
    duplicated: int
    unreceipted: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class CityResult:
    options: dict[str, Any]
    phases: list[PhaseRow]
    checks: list[Check]
    seconds: float
    folder: str

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": self.seconds, "folder": self.folder, "options": self.options,
                "phases": [asdict(p) for p in self.phases], "checks": [asdict(c) for c in self.checks]}


def footage_jpeg(media: Path) -> bytes:
    """One frame of the shared footage as a JPEG: the evidence every episode carries."""
    import cv2

    for clip in sorted(media.glob("*.mp4")):
        capture = cv2.VideoCapture(str(clip))
        ok, frame = capture.read()
        capture.release()
        if ok:
            frame = cv2.resize(frame, (480, 270))
            encoded, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if encoded:
                return bytes(jpeg.tobytes())
    raise ChaosError(f"no readable *.mp4 footage in {media}")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class _City:
    """Every part of one run, torn down in reverse order whatever happens."""

    def __init__(self, opts: CityOptions, folder: Path, media: Path, progress: Callable[[str], None]) -> None:
        self.opts, self.folder, self.media, self.say = opts, folder, media, progress
        self.stack = ExitStack()
        self.faults_at: dict[str, datetime] = {}
        self.checks: list[Check] = []
        self.notes: dict[str, str] = {}

    # -- start -------------------------------------------------------------------------------------

    def start(self) -> None:
        opts, folder = self.opts, self.folder
        self.say("storage: PostgreSQL primary and streaming replica, SeaweedFS S3")
        self.cluster = PostgresCluster(folder / "postgres").start()
        self.stack.callback(self.cluster.stop)
        self.engine = create_engine(self.cluster.primary_url, pool_pre_ping=True)
        self.stack.callback(self.engine.dispose)
        self.s3 = SeaweedS3(folder / "seaweedfs").start()
        self.stack.callback(self.s3.stop)
        self.s3.create_bucket(BUCKET)

        self.say("brokers: core, standby core, and districts bridged to both")
        self.core = self._broker("core")
        self.standby = self._broker("standby")
        self.specs = edge_specs(opts)
        self.districts: dict[int, MosquittoProcess] = {}
        for d in range(1, opts.districts + 1):
            self.districts[d] = self._broker(f"district-{d}", bridge_section(f"district-{d}", self.core.port,
                                                                             self.standby.port))

        site = folder / "site.yaml"
        site.write_text(site_yaml(self.specs, self.core.port, ADMIN_PASSWORD))
        flow = folder / "workflow.yaml"
        flow.write_text(workflow_yaml(opts))
        common = ["--config", str(site), "--workflow", str(flow), "--database-url", self.cluster.primary_url,
                  "--evidence-store", self.s3.evidence_store_url(BUCKET, PREFIX), "--log-level", "info"]
        env = self.s3.env()

        self.say(f"central: {opts.apis} API and scheduler processes, {opts.workers} ingest workers on slots")
        self.apis = [api(n + 1, folder, common, self.cluster.replica_url, MAX_LAG_S, env) for n in range(opts.apis)]
        self.apis[0].start()  # the first one migrates the empty database; the rest find it done
        self.stack.callback(self._stop_all)
        wait_ready(self.apis[:1])
        for process in self.apis[1:]:
            process.start()
        self.workers = [worker(n + 1, folder, common, opts.workers, [self.core.port, self.standby.port], env)
                        for n in range(opts.workers)]
        for process in self.workers:
            process.start()
        wait_ready(self.apis)
        wait_for(self._slots_held, 120, f"{opts.workers} ingest workers to hold one slot each", interval=0.5)

        self.say(f"edges: {opts.edges} (real outbox and publisher) in {opts.districts} districts")
        self.edges: list[CityEdge] = start_edges(self.specs, folder, {d: b.port for d, b in self.districts.items()},
                                                 opts.receipt_timeout_s)
        self.stack.callback(self._close_edges)
        for edge in self.edges:
            wait_for(lambda e=edge: e.process.status().get("receipts_active"), 120,  # type: ignore[misc]
                     f"central's hello to reach {edge.spec.id} through its district's bridge", interval=0.3)
        self.token = self.apis[-1].login("admin", ADMIN_PASSWORD)

    def _broker(self, name: str, extra: str = "") -> MosquittoProcess:
        broker = MosquittoProcess(data_dir=self.folder / name, extra_conf=extra).start()
        self.stack.callback(broker.stop)
        return broker

    def _stop_all(self) -> None:
        for process in [*self.workers, *self.apis] if hasattr(self, "workers") else self.apis:
            process.stop()

    def _close_edges(self) -> None:
        for edge in self.edges:
            edge.process.stop()
            edge.outbox.close()

    # -- what the database says ----------------------------------------------------------------------

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def leases(self) -> dict[str, str]:
        return {name: holder for name, holder in self._rows(
            "SELECT name, holder FROM leases WHERE expires_at > :now", now=datetime.now(UTC))}

    def _slots_held(self) -> bool:
        for process in self.workers:
            process.check_running()
        try:
            held = [h for name, h in self.leases().items() if name.startswith(SLOT_LEASE)]
        except ProgrammingError:  # not migrated yet
            return False
        return len(held) == self.opts.workers and all(
            any(f":{p.proc.pid}:" in h for h in held) for p in self.workers if p.proc is not None)

    def _holder_process(self, holder: str) -> CentralProcess | None:
        for process in [*self.workers, *self.apis]:
            if process.proc is not None and f":{process.proc.pid}:" in holder:
                return process
        return None

    # -- faults --------------------------------------------------------------------------------------

    def strike(self, fault: str) -> None:
        self.faults_at[fault] = datetime.now(UTC)
        if fault == WORKER_KILLED:
            victim = self.workers[0]
            assert victim.proc is not None
            slots = sorted(n for n, h in self.leases().items()
                           if n.startswith(SLOT_LEASE) and f":{victim.proc.pid}:" in h)
            victim.kill()
            self.say(f"fault: kill -9 {victim.name} (held {', '.join(slots) or 'no slot'}), for good")
            self.notes["killed worker slots"] = ",".join(slots)
        elif fault == LEASE_HOLDER_KILLED:
            holder = self.leases().get(DEADLINE_LEASE, "")
            leader = self._holder_process(holder)
            if leader is None:
                raise ChaosError(f"no API process holds the deadline lease (holder {holder!r})")
            self.survivor = next(p for p in self.apis if p is not leader)
            leader.kill()
            self.say(f"fault: kill -9 {leader.name}, the deadline lease holder")
            if self.survivor is self.apis[-1]:
                return
            self.token = self.survivor.login("admin", ADMIN_PASSWORD)
        elif fault == CORE_KILLED:
            self.core.kill()
            self.say("fault: kill -9 the core broker; the bridges fail over to the standby")
        elif fault == REPLICA_STOPPED:
            status, headers, _ = self._stats()
            self.checks.append(Check("statistics read from the replica before it stopped",
                                     status == 200 and headers.get(READ_SOURCE) == "replica",
                                     f"HTTP {status}, source {headers.get(READ_SOURCE)}"))
            self.cluster.stop_replica()
            stopped = time.monotonic()
            self.say("fault: the replica stopped")
            # A response computed from the replica may be served from central's 1 s statistics cache.
            answer: list[tuple[int, dict[str, str]]] = []

            def fell_back() -> bool:
                status, headers, _ = self._stats()
                answer[:] = [(status, headers)]
                return status == 200 and headers.get(READ_SOURCE) == "primary"

            try:
                wait_for(fell_back, 30, "statistics to read from the primary", interval=0.5)
            except ChaosError:
                pass
            status, headers = answer[0]
            self.checks.append(Check(
                "statistics fall back to the primary with the replica stopped, and say so",
                status == 200 and headers.get(READ_SOURCE) == "primary" and bool(headers.get(READ_FALLBACK)),
                f"HTTP {status}, source {headers.get(READ_SOURCE)}, fallback {headers.get(READ_FALLBACK)!r} "
                f"({time.monotonic() - stopped:.1f} s after the stop)"))

    def _stats(self) -> tuple[int, dict[str, str], Any]:
        target = getattr(self, "survivor", self.apis[-1])
        return target.get("/api/v1/stats", self.token)

    # -- the run -------------------------------------------------------------------------------------

    def drive(self) -> Load:
        load = Load(self.opts, self.edges, footage_jpeg(self.media))
        self.stack.callback(load.stop)
        pending = sorted(self.opts.fault_offsets().items(), key=lambda item: item[1])
        total = load.total_episodes * EVENTS_PER_EPISODE
        self.say(f"load: {total} events ({load.total_episodes} episodes) over {self.opts.seconds:g} s")
        load.start()
        last_report = 0.0
        while load.writing() or pending:
            elapsed = time.monotonic() - load.started
            while pending and elapsed >= pending[0][1]:
                self.strike(pending.pop(0)[0])
            if elapsed - last_report >= 5:
                last_report = elapsed
                written, receipted = load.counts()
                self.say(f"[{elapsed:5.0f} s] written {written}/{total} events, receipted {receipted}")
            for process in self.workers[1:] + [getattr(self, "survivor", self.apis[-1])]:
                process.check_running()
            time.sleep(0.2)
        limit = 4 * self.opts.receipt_timeout_s + 180
        self.say(f"load written; waiting up to {limit:g} s for every receipt")
        reported = [time.monotonic()]

        def drained() -> bool:
            if time.monotonic() - reported[0] >= 5:
                reported[0] = time.monotonic()
                written, receipted = load.counts()
                self.say(f"[drain] receipted {receipted}/{written}")
            return load.outboxes_empty()

        try:
            wait_for(drained, limit, "every edge's outbox to empty (every event receipted)", interval=1)
        except ChaosError as exc:
            self.checks.append(Check("every event receipted", False, str(exc)))
        load.stop()
        load.note_receipts()
        return load

    # -- counting ------------------------------------------------------------------------------------

    def judge(self, load: Load) -> list[PhaseRow]:
        stored: dict[str, int] = {str(event_id): n for event_id, n in self._rows(
            "SELECT event_id, COUNT(*) FROM events GROUP BY event_id")}
        offsets = self.opts.fault_offsets()
        by_phase: dict[str, list[tuple[str, Any]]] = {name: [] for name in PHASES}
        for event_id, event in load.events.items():
            by_phase[phase_at(event.offset_s, offsets)].append((event_id, event))
        rows = []
        for name in PHASES:
            events = by_phase[name]
            latencies = [e.receipted_at - e.written_at for _, e in events if e.receipted_at is not None]
            copies = [stored.get(event_id, 0) for event_id, _ in events]
            rows.append(PhaseRow(name, len(events), sum(1 for c in copies if c), sum(1 for c in copies if not c),
                                 sum(c - 1 for c in copies if c > 1), sum(1 for _, e in events if e.receipted_at is None),
                                 _pct(latencies, 0.5), _pct(latencies, 0.99), _pct(latencies, 1.0)))
        written = len(load.events)
        lost = sum(r.lost for r in rows)
        duplicated = sum(r.duplicated for r in rows)
        extra = set(stored) - set(load.events)
        self.checks.append(Check("every event stored exactly once", lost == 0 and duplicated == 0 and not extra,
                                 f"{written} written, {lost} lost, {duplicated} duplicated, {len(extra)} unknown"))
        self._judge_incidents(load)
        self._judge_blobs(load)
        self._judge_deadlines()
        self._judge_takeovers()
        return rows

    def _judge_incidents(self, load: Load) -> None:
        incidents: dict[str, list[Any]] = {}
        for row in self._rows("SELECT incident_key, event_count, condition, ended_at, max_score, "
                              "latest_snapshot_sha256 FROM incidents"):
            incidents.setdefault(row.incident_key, []).append(row)
        wrong = []
        for episode in load.episodes:
            found = incidents.get(episode.incident_key, [])
            update_blob = episode.events[1].evidence[0].sha256
            if len(found) != 1:
                wrong.append(f"{episode.incident_key}: {len(found)} incidents")
                continue
            row = found[0]
            if (row.event_count, row.condition, row.ended_at is not None, round(row.max_score, 3),
                    row.latest_snapshot_sha256) != (EVENTS_PER_EPISODE, "cleared", True, 0.9, update_blob):
                which = {e.evidence[0].sha256: e.phase.value for e in episode.events if e.evidence}
                wrong.append(f"{episode.incident_key}: events {row.event_count}, {row.condition}, max score "
                             f"{row.max_score}, snapshot of {which.get(row.latest_snapshot_sha256, 'no event')}")
        self.checks.append(Check("each episode made one correct incident (3 events, cleared, its best score "
                                 "and newest snapshot), whichever workers stored its events", not wrong,
                                 f"{len(load.episodes)} episodes; wrong: {wrong[:5]}"))

    def _judge_blobs(self, load: Load) -> None:
        expected = {sha: blob for episode in load.episodes for sha, blob in episode.blobs.items()}
        objects = self.s3.list_objects(BUCKET, PREFIX)
        by_sha: dict[str, list[str]] = {}
        for key in objects:
            by_sha.setdefault(key.rsplit("/", 1)[-1], []).append(key)
        missing = [sha for sha in expected if sha not in by_sha]
        twice = [sha for sha, keys in by_sha.items() if len(keys) > 1]
        corrupt = [key for key, body in objects.items() if hashlib.sha256(body).hexdigest() != key.rsplit("/", 1)[-1]]
        unknown = [sha for sha in by_sha if sha not in expected]
        self.checks.append(Check("every blob in S3 once, under its sha256",
                                 not (missing or twice or corrupt or unknown),
                                 f"{len(expected)} blobs; {len(missing)} missing, {len(twice)} twice, "
                                 f"{len(corrupt)} not matching their name, {len(unknown)} unknown"))

    def _judge_deadlines(self) -> None:
        killed = self.faults_at.get(LEASE_HOLDER_KILLED)
        if killed is None:
            return
        now = datetime.now(UTC)
        grace = timedelta(seconds=3 * self.opts.scheduler_interval_s + 12)
        (overdue,) = self._rows(
            "SELECT COUNT(*) AS n FROM incidents WHERE state <> 'closed' AND stage_deadline_at < :due "
            "AND (deadline_color IS NULL OR deadline_color <> 'red')", due=now - grace)
        (fired,) = self._rows(
            "SELECT COUNT(*) AS n FROM incidents WHERE deadline_color = 'red' AND stage_deadline_at > :killed",
            killed=killed)
        holder = self.leases().get(DEADLINE_LEASE, "")
        survivor = self._holder_process(holder)
        self.checks.append(Check(
            "deadlines still fire after the lease holder died", overdue.n == 0 and fired.n > 0 and survivor is not None,
            f"{fired.n} escalated with deadlines after the kill, {overdue.n} overdue and not escalated; "
            f"lease now held by {survivor.name if survivor else holder or 'nobody'}"))

    def _judge_takeovers(self) -> None:
        slots = [s for s in self.notes.get("killed worker slots", "").split(",") if s]
        leases = self.leases()
        taken = {slot: self._holder_process(leases.get(slot, "")) for slot in slots}
        self.checks.append(Check(
            "the killed worker's slots were taken over by survivors",
            bool(slots) and all(p is not None and p.alive for p in taken.values()),
            ", ".join(f"{slot} -> {p.name if p else 'nobody'}" for slot, p in taken.items()) or "it held no slot"))

    def close(self) -> None:
        self.stack.close()


def run_city(opts: CityOptions, media: Path, workdir: Path | None = None,
             progress: Callable[[str], None] = lambda _t: None) -> CityResult:
    started = time.monotonic()
    with _folder(workdir) as folder:
        city = _City(opts, folder, media, progress)
        try:
            city.start()
            load = city.drive()
            phases = city.judge(load)
        finally:
            city.close()
        return CityResult(asdict(opts), phases, city.checks, round(time.monotonic() - started, 1), str(folder))


@contextmanager
def _folder(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    folder = Path(tempfile.mkdtemp(prefix="sharpeyes-city-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
