"""Turn one MQTT message into rows: events, incidents, evidence, edge and camera health.

Pure of MQTT: ``IngestService.handle(topic, payload, received_at)`` is all the transport calls, and
it commits before returning, so the caller may acknowledge the message afterwards.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import JSON, ColumnElement, Insert, Text, bindparam, cast, func, insert, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from broker.payloads import (
    CameraHealth,
    CommandReply,
    ContractError,
    EdgeStatus,
    HazardEvent,
    parse_actuation,
    parse_event,
)
from broker.topics import TopicParts, parse_topic
from central import actuations, audit, lifecycle
from central.edge_health import edge_problems
from central.engine import WorkflowEngine, edge_actor
from central.evidence_store import (
    EvidenceBackend,
    StoredBlob,
    sha256_hex,
    sniff_content_type,
    store_checked,
)
from central.incidents import new_incident
from central.routing import GridRouter
from central.tables import (
    AuditRecord,
    CameraHealthRow,
    CommandRow,
    DeadLetter,
    EdgeStatusRow,
    Event,
    Evidence,
    EvidenceRef,
    Incident,
    IncidentAlias,
    IncidentEvidence,
    Task,
    WebhookDelivery,
    table_of,
    utcnow,
)
from central.vocabulary import IncidentSource

log = logging.getLogger(__name__)

# Bytes of a dead letter's payload kept in the database (the sha256 and size cover the rest).
DEAD_LETTER_PREFIX = 64 * 1024

@dataclass
class Outcome:
    """What happened to one message.

    kind: event, duplicate, actuation, evidence, evidence_duplicate, status, health, reply, ignored, dead_letter.
    """

    kind: str
    reason: str | None = None
    incident_id: int | None = None
    created_incident: bool = False
    new_task_ids: list[int] = field(default_factory=list)
    # A command reply (recheck) moved an incident.
    moved_incident: bool = False
    # The event's own time (events and duplicates): the benchmark measures latency from it.
    observed_at: datetime | None = None

    @property
    def incidents_changed(self) -> bool:
        return self.kind in ("event", "evidence", "actuation") or self.moved_incident


_WRITERS = None


def _blob_writers():
    global _WRITERS
    if _WRITERS is None:
        from concurrent.futures import ThreadPoolExecutor

        _WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="evidence-write")
    return _WRITERS


def _parse_fast(payload: bytes) -> HazardEvent | None:
    """The event as parse_event gives it, parsed and validated in one pass by pydantic's Rust core
    (about half the cost); None when it is not plainly valid: _event's parse_event then accepts it
    or gives the reason it is refused."""
    try:
        event = HazardEvent.model_validate_json(payload)
    except ValidationError:
        return None
    # A missing "schema" takes the model's default here, but parse_event refuses it.
    return event if "schema_" in event.model_fields_set else None


def _put_checked(evidence: EvidenceBackend, sha: str, payload: bytes) -> None:
    # Runs on the writer pool: hashlib lets go of the interpreter lock for large buffers, so the
    # check and the write of a batch's blobs overlap with building its rows; handle_batch makes
    # them durable together (sync_deferred) before the commit. The same check and write as the
    # receiving process does for a filesystem store.
    if store_checked(evidence, sha, payload) is None:
        raise _Reject("sha256 mismatch")


# Rows a burst creates through the ORM with integer ids. SQLite cannot say which id RETURNING
# gave which row of a multi-row INSERT, so SQLAlchemy inserts such rows one statement each; with
# the ids numbered here the flush sends each table's rows in one executemany instead.
_NUMBERED = (Incident, AuditRecord, Task, WebhookDelivery)
_NEXT_IDS = "sharpeyes.next_ids"


def _number(session: Session, nexts: dict[type, int], obj: Any) -> None:
    kind = type(obj)
    if kind not in nexts:
        # Read once per transaction. Another writer that takes an id meanwhile makes this
        # flush fail on the primary key, and the batch is retried message by message.
        nexts[kind] = (session.connection().scalar(select(func.max(kind.__table__.c.id))) or 0) + 1
    obj.id = nexts[kind]
    nexts[kind] += 1


def _numbered_now(session: Session, obj: Any) -> bool:
    """In a SQLite batch, give a new row its id at once, so that nothing need be flushed for it:
    a new incident is then inserted once, with its final state, instead of inserted and updated."""
    nexts: dict[type, int] | None = session.info.get(_NEXT_IDS)
    if nexts is None:
        return False
    _number(session, nexts, obj)
    return True


@sa_event.listens_for(Session, "before_flush")
def _number_new_rows(session: Session, _context: object, _instances: object) -> None:
    nexts: dict[type, int] | None = session.info.get(_NEXT_IDS)
    if nexts is None:
        return
    for obj in session.new:
        if type(obj) in _NUMBERED and obj.id is None:
            _number(session, nexts, obj)


# The batch's plain rows (events, evidence, audit records) go in as Core INSERTs on the tables:
# an INSERT on the ORM entity takes the ORM's bulk path, which costs more than SQLite's own work.
def _event_insert(session: Session) -> Insert:
    """INSERT of an event row whose payload is the JSON text as received (no re-serialising)."""
    text = bindparam("payload_json", type_=Text)
    # PostgreSQL's json column takes text only through a cast; SQLite keeps JSON as text anyway.
    payload = cast(text, JSON) if session.get_bind().dialect.name == "postgresql" else text
    return insert(table_of(Event)).values(payload=payload)


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
    )


class IngestService:
    def __init__(self, session: Session, evidence: EvidenceBackend, router: GridRouter | None = None,
                 workflow: WorkflowEngine | None = None) -> None:
        self.session = session
        self.evidence = evidence
        self.router = router or GridRouter(None)
        self.workflow = workflow or self.router.default_engine()
        # Per transaction (see _store): what one query per batch told us, so that each event does
        # not look up its duplicate and its incident on its own.
        self._known_events: set[str] = set()
        self._incidents: dict[str, Incident] = {}
        self._parsed: dict[int, HazardEvent] = {}
        # Batch mode: each parsed event's id as text (UUID.__str__ is not free, and three places ask).
        self._event_ids: dict[int, str] = {}
        # Batch mode: incident keys whose owner (site, edge, camera, hazard) has been checked.
        self._owners_checked: set[tuple[str, ...]] = set()
        self._plain_events: list[dict[str, object]] = []
        # Batch mode: events naming evidence (their refs follow the multi-row INSERT) and blobs
        # received, settled set-wise by _settle_evidence instead of a flush and three queries each.
        self._ref_events: list[tuple[HazardEvent, str, int]] = []
        self._blobs: list[tuple[str, int, str, datetime, Outcome]] = []
        # Batch mode: evidence files being written (and fsync'ed) by the writer pool while the
        # rows are built; all must be done before the commit.
        self._blob_writes: dict[str, Future[object]] = {}
        # Batch mode: blobs the receiving process wrote already; synced with the others before the commit.
        self._stored_blobs = False
        # Batch mode: outcomes whose new tasks get their ids from the batch's last flush.
        self._task_outcomes: list[tuple[Outcome, list[Task]]] = []
        # (site, camera, hazard, zone) -> open incidents there, newest first: episode merge candidates.
        self._open_at: dict[tuple[str, str | None, str, str | None], list[Incident]] | None = None
        # Batch mode: keys of incidents inserted up front (_precreate) whose first event is still to come.
        self._precreated: set[str] = set()

    def handle(self, topic: str, payload: bytes | StoredBlob, received_at: datetime | None = None) -> Outcome:
        """Store what one message says (or dead-letter it) and commit: a batch of one. Only database
        outages raise."""
        return self.handle_batch([(topic, payload, received_at or utcnow())])[0]

    def handle_batch(self, items: list[tuple[str, bytes | StoredBlob, datetime]]) -> list[Outcome]:
        """Store messages in one transaction; the caller acknowledges them all after it returns.

        There is one path for one message or many. Should any message be refused or collide with
        another worker's row, the transaction is rolled back and each message is stored on its own
        (``_store_alone``), so one bad message never costs the others. Database outages raise.
        """
        try:
            return self._store(items)
        except (OperationalError, InterfaceError):
            raise
        except _Reject as rej:
            if len(items) == 1:  # nothing else to save: its reason is known
                topic, payload, received_at = items[0]
                return [self._dead_letter(topic, payload, rej.reason, received_at)]
            return [self._store_alone(item) for item in items]
        except Exception:  # noqa: BLE001 - IntegrityError or a bug: settle each message alone
            return [self._store_alone(item) for item in items]

    def _store(self, items: list[tuple[str, bytes | StoredBlob, datetime]]) -> list[Outcome]:
        """Every message of ITEMS in one transaction, committed; rolled back and raised on any failure."""
        try:
            self._begin_batch(items)
            outcomes = [self._dispatch(topic, payload, received_at) for topic, payload, received_at in items]
            self._settle_evidence()
            audit.write_deferred(self.session)
            self.session.flush()
            for outcome, tasks in self._task_outcomes:
                outcome.new_task_ids = [t.id for t in tasks]
            # The evidence bytes are durable before the rows naming them are committed.
            for write in self._blob_writes.values():
                write.result()
            if self._blob_writes or self._stored_blobs:
                self.evidence.sync_deferred()
            self.session.commit()
            return outcomes
        except BaseException:
            self.session.rollback()
            wait(self._blob_writes.values())  # a message stored alone writes its file again if it failed
            raise
        finally:
            self._end_batch()

    def _store_alone(self, item: tuple[str, bytes | StoredBlob, datetime]) -> Outcome:
        """One message in its own transaction; a refusal or a failure becomes a dead letter with its reason."""
        topic, payload, received_at = item
        for attempt in (1, 2):
            try:
                return self._store([item])[0]
            except _Reject as rej:
                return self._dead_letter(topic, payload, rej.reason, received_at)
            except (OperationalError, InterfaceError):
                raise  # the database is unreachable: the caller must not acknowledge the message
            except IntegrityError as exc:
                # Another central worker stored the same event, incident or blob meanwhile; a second
                # pass sees its row and merges into it.
                if attempt == 2:
                    return self._dead_letter(topic, payload, f"could not store: {exc.orig}", received_at)
            except Exception as exc:  # noqa: BLE001 - keep the payload rather than crash the ingest
                log.exception("ingest failed on %s", topic)
                return self._dead_letter(
                    topic, payload, f"central could not process it: {type(exc).__name__}: {exc}", received_at
                )
        raise AssertionError("unreachable")

    def _begin_batch(self, items: list[tuple[str, bytes | StoredBlob, datetime]]) -> None:
        audit.defer(self.session)
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.info[_NEXT_IDS] = {}
        self._prewrite_blobs(items)
        for _topic, payload, _at in items:
            if _topic.endswith("/event") and isinstance(payload, bytes):
                event = _parse_fast(payload)
                # An unknown origin is a dead letter: no incident may be opened for it in advance.
                if event is not None and self.router.unknown_origin(event.site, event.edge, event.camera) is None:
                    self._parsed[id(payload)] = event
                    self._event_ids[id(event)] = str(event.event_id)
        events = list(self._parsed.values())
        ids = [self._event_ids[id(e)] for e in events]
        keys = sorted({e.incident_key for e in events})
        for chunk in range(0, len(ids), 500):
            self._known_events.update(self.session.scalars(
                select(Event.event_id).where(Event.event_id.in_(ids[chunk:chunk + 500]))))
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            for incident in self.session.scalars(select(Incident).where(Incident.incident_key.in_(part))):
                self._incidents[incident.incident_key] = incident
            for alias in self.session.scalars(select(IncidentAlias).where(IncidentAlias.incident_key.in_(part))):
                merged = self.session.get(Incident, alias.incident_id)
                if merged is not None:
                    self._incidents[alias.incident_key] = merged
        self._prefetch_open(events)
        # Read before the batch's new incidents are pending: the query would flush them early.
        self.workflow.silences(self.session, self.workflow.clock.now())
        self._precreate(events)

    def _precreate(self, events: list[HazardEvent]) -> None:
        """Insert, in one flush, the incidents this batch certainly opens.

        The audit chain, tasks and event rows need an incident's id; a flush per new incident gave
        it at a cost that dominated a burst. An incident is certain when its key is unknown and no
        open incident and no other new key of the batch share its place (site, camera, hazard,
        zone), so episode merge cannot claim it; the rest are created one by one as before.
        """
        seen = set(self._known_events)
        firsts: dict[str, HazardEvent] = {}
        for event in events:
            event_id = self._event_ids[id(event)]
            if event_id in seen:
                continue  # a duplicate opens nothing
            seen.add(event_id)
            if event.incident_key not in self._incidents:
                firsts.setdefault(event.incident_key, event)
        if not firsts:
            return
        places = Counter(self._event_place(e) for e in firsts.values())
        merging = self._open_at if self._open_at is not None else {}
        certain = [e for e in firsts.values()
                   if self.workflow.config.merge_window_s <= 0
                   or (places[self._event_place(e)] == 1 and self._event_place(e) not in merging)]
        if not certain:
            return
        incidents = [self._new_incident(e) for e in certain]
        numbered = [_numbered_now(self.session, incident) for incident in incidents]
        self.session.add_all(incidents)
        if not all(numbered):
            self.session.flush()
        for incident in incidents:
            self._incidents[incident.incident_key] = incident
            self._precreated.add(incident.incident_key)

    @staticmethod
    def _event_place(event: HazardEvent) -> tuple[str, str | None, str, str | None]:
        return (event.site, event.camera, event.hazard.value, event.zone)

    def _prefetch_open(self, events: list[HazardEvent]) -> None:
        """One query for the open incidents new episodes in this batch could merge into."""
        window = self.workflow.config.merge_window_s
        if window <= 0:
            return
        # Set whenever episodes can merge: every event that opens an incident is in this batch.
        self._open_at = {}
        fresh = [e for e in events if e.incident_key not in self._incidents]
        if not fresh:
            return
        from datetime import timedelta

        from central.workflow import OPEN_STATES

        cameras = sorted({e.camera for e in fresh})
        oldest = min(e.started_at for e in fresh) - timedelta(seconds=window)
        # Narrowed to the batch's zones as well: a camera's other open incidents cannot be merge
        # targets, and loading them all made every batch slower as open incidents piled up.
        zones = sorted({e.zone for e in fresh if e.zone is not None})
        in_zones: ColumnElement[bool] = Incident.zone.in_(zones)
        if any(e.zone is None for e in fresh):
            in_zones = or_(in_zones, Incident.zone.is_(None))
        for chunk in range(0, len(cameras), 500):
            rows = self.session.scalars(
                select(Incident).where(Incident.camera.in_(cameras[chunk:chunk + 500]), in_zones,
                                       Incident.state.in_(OPEN_STATES), Incident.last_observed_at >= oldest)
                .order_by(Incident.id.desc()))
            for incident in rows:
                self._open_at.setdefault(self._place(incident), []).append(incident)

    @staticmethod
    def _place(incident: Incident) -> tuple[str, str | None, str, str | None]:
        return (incident.site, incident.camera, incident.hazard, incident.zone)

    def _prewrite_blobs(self, items: list[tuple[str, bytes | StoredBlob, datetime]]) -> None:
        """Start checking and writing the batch's evidence files in the background while the rows
        are built; handle_batch waits for every write and syncs them all once before it commits."""
        for topic, payload, _at in items:
            if isinstance(payload, StoredBlob):
                self._stored_blobs = True
                continue
            parts = parse_topic(topic) if "/evidence/" in topic else None
            if (parts is not None and parts.kind == "evidence" and parts.sha256 is not None
                    and parts.sha256 not in self._blob_writes and payload):
                self._blob_writes[parts.sha256] = _blob_writers().submit(_put_checked, self.evidence, parts.sha256,
                                                                         payload)

    def _end_batch(self) -> None:
        self.session.info.pop(_NEXT_IDS, None)
        self._open_at = None
        self._known_events.clear()
        self._incidents.clear()
        self._parsed.clear()
        self._event_ids.clear()
        self._owners_checked.clear()
        self._plain_events = []
        self._ref_events = []
        self._blobs = []
        self._blob_writes = {}
        self._stored_blobs = False
        self._task_outcomes = []
        self._precreated = set()

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, topic: str, payload: bytes | StoredBlob, received_at: datetime) -> Outcome:
        parts = parse_topic(topic)
        if parts is None:
            raise _Reject(f"unknown topic {topic!r}: not part of the sharpeyes/v1 contract")
        if parts.kind == "evidence":
            return self._evidence(parts, payload, received_at)
        if not isinstance(payload, bytes):  # the receiver stores blobs of evidence topics only
            raise _Reject(f"a stored blob arrived on {topic!r}, which carries JSON")
        if parts.kind == "event":
            return self._event(parts, payload, received_at)
        if parts.kind == "actuation":
            return self._actuation(parts, payload, received_at)
        if parts.kind == "status":
            return self._status(parts, payload, received_at)
        if parts.kind == "health":
            return self._health(parts, payload, received_at)
        if parts.kind == "reply":
            self._settle_evidence()  # a recheck reply may name a snapshot received just before it
            return self._reply(parts, payload, received_at)
        raise _Reject(f"central does not ingest {parts.kind} messages (topic {topic!r})")

    def _dead_letter(self, topic: str, payload: bytes | StoredBlob, reason: str, received_at: datetime) -> Outcome:
        log.warning("dead letter on %s: %s", topic, reason)
        if isinstance(payload, StoredBlob):
            payload = self.evidence.read(payload.sha256) or b""
        # A bounded prefix, with the whole payload's sha256 and size: a 32 MB message must not
        # become a 32 MB row (the prefix is enough to see what went wrong).
        self.session.add(DeadLetter(topic=topic, payload=payload[:DEAD_LETTER_PREFIX], reason=reason,
                                    received_at=received_at, payload_sha256=hashlib.sha256(payload).hexdigest(),
                                    size=len(payload)))
        self.session.commit()
        return Outcome("dead_letter", reason=reason)

    @staticmethod
    def _validate(model: type[BaseModel], payload: bytes) -> BaseModel:
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            raise _Reject(_describe(exc)) from None

    @staticmethod
    def _same_origin(parts: TopicParts, site: str, edge: str) -> None:
        # The broker's ACL confines an edge to its own topics; a payload naming another edge is a
        # misconfigured or spoofing device.
        if (site, edge) != (parts.site, parts.edge):
            raise _Reject(
                f"payload names site/edge {site}/{edge} but arrived on the topic of {parts.site}/{parts.edge}"
            )

    def _known_origin(self, parts: TopicParts, site: str, edge: str, camera: str) -> None:
        """The payload comes from the topic's edge, and the camera is one central files for."""
        self._same_origin(parts, site, edge)
        unknown = self.router.unknown_origin(site, edge, camera)
        if unknown is not None:
            raise _Reject(unknown)

    # -- hazard events ---------------------------------------------------------------------------

    def _event(self, parts: TopicParts, payload: bytes, received_at: datetime) -> Outcome:
        event = self._parsed.get(id(payload))
        if event is None:
            try:
                event = parse_event(payload)
            except ContractError as exc:
                raise _Reject(exc.reason) from None
        self._known_origin(parts, event.site, event.edge, event.camera)
        event_id = self._event_ids.get(id(event)) or str(event.event_id)
        duplicate = event_id in self._known_events
        self._known_events.add(event_id)
        if duplicate:
            return Outcome("duplicate", reason=f"event {event_id} already stored", observed_at=event.observed_at)

        incident, created = self._incident_for(event)
        was_state = incident.state
        lifecycle.apply_event(incident, event)
        values = dict(
            event_id=event_id,
            incident_id=incident.id,
            phase=event.phase.value,
            seq=event.seq,
            score=event.score,
            observed_at=event.observed_at,
            received_at=received_at,
            # The bytes the edge sent, as validated (the model forbids unknown fields): stored as
            # they came instead of re-serialised, which cost a sixth of the writer's time.
            payload_json=payload.decode(),
        )
        # Plain rows for the transaction's one multi-row INSERT (no ORM object); evidence refs follow it.
        self._plain_events.append(values)
        if event.evidence:
            self._ref_events.append((event, event_id, incident.id))

        if created:
            self.workflow.on_created(self.session, incident, edge_actor(event.edge))
        elif was_state == "triage":
            # A surer observation may reach the hazard's auto-register score.
            self.workflow.maybe_register(self.session, incident)
        new_tasks: list[Task] = []
        if incident.state != was_state or created:
            new_tasks = [o for o in self.session.new if isinstance(o, Task) and o.incident_id == incident.id]
        outcome = Outcome("event", incident_id=incident.id, created_incident=created, observed_at=event.observed_at)
        if new_tasks:
            # Their ids come with the transaction's last flush: one flush per new task costs dearly.
            self._task_outcomes.append((outcome, new_tasks))
        return outcome

    def _incident_for(self, event: HazardEvent) -> tuple[Incident, bool]:
        known = self._incidents.get(event.incident_key)
        if event.incident_key in self._precreated and known is not None:
            self._precreated.discard(event.incident_key)
            self._check_owner(known, event)
            if self._open_at is not None:
                self._open_at.setdefault(self._place(known), []).insert(0, known)
            return known, True
        if known is None:
            # Neither the key nor an alias of it was in the database when the transaction began.
            incident, created = self._find_or_create(event)
            self._incidents[event.incident_key] = incident
            if created and self._open_at is not None and incident.state != "closed":
                self._open_at.setdefault(self._place(incident), []).insert(0, incident)
            return incident, created
        self._check_owner(known, event)
        return known, False

    def _check_owner(self, incident: Incident, event: HazardEvent) -> None:
        owner = (event.incident_key, event.site, event.edge, event.camera, event.hazard)
        if owner in self._owners_checked:
            return  # an earlier event of the batch passed the same check
        theirs = (incident.site, incident.edge, incident.camera, incident.hazard)
        ours = (event.site, event.edge, event.camera, event.hazard.value)
        if theirs == ours or self.session.get(IncidentAlias, event.incident_key) is not None:
            self._owners_checked.add(owner)
        else:
            raise _Reject(
                f"incident_key {event.incident_key!r} already belongs to {'/'.join(map(str, theirs))}, "
                f"not {'/'.join(ours)}"
            )

    def _find_or_create(self, event: HazardEvent) -> tuple[Incident, bool]:
        """For a key neither stored nor aliased when the transaction began (``_begin_batch`` read
        both): an open incident of the same place takes the episode, else a new incident."""
        open_one = self._open_episode_target(event)
        if open_one is not None:
            # The edge saw the same hazard again (a parked car re-detected): one case, counted twice.
            self.session.add(IncidentAlias(incident_key=event.incident_key, incident_id=open_one.id))
            self.workflow.on_episode(self.session, open_one, event.incident_key, event.observed_at)
            return open_one, False
        incident = self._new_incident(event)
        numbered = _numbered_now(self.session, incident)
        self.session.add(incident)
        if not numbered:
            self.session.flush()  # for its id
        return incident, True

    def _new_incident(self, event: HazardEvent) -> Incident:
        route = self.router.route(event.site, event.camera)
        return new_incident(incident_key=event.incident_key, hazard=event.hazard.value, site=event.site,
                            source=IncidentSource.CAMERA, started_at=event.started_at, observed_at=event.observed_at,
                            grid_cell=route.grid_cell, assigned_worker=route.worker, edge=event.edge,
                            camera=event.camera, zone=event.zone)

    def _open_episode_target(self, event: HazardEvent) -> Incident | None:
        window = self.workflow.config.merge_window_s
        if window <= 0:
            return None
        from datetime import timedelta

        # _prefetch_open read the candidates of every event of the transaction that opens one.
        assert self._open_at is not None
        since = event.started_at - timedelta(seconds=window)
        place = (event.site, event.camera, event.hazard.value, event.zone)
        return next((i for i in self._open_at.get(place, []) if i.last_observed_at >= since), None)

    def _settle_evidence(self) -> None:
        """Store the transaction's pending event rows, their evidence refs, the blobs' rows and the
        incident links in a few set-wise statements.

        The end state is the one message-by-message handling reaches in any arrival order: every
        blob has a row (its type as an event declared it, else as sniffed), and every incident whose
        events name a stored blob is linked to it.
        """
        if self._plain_events:
            self.session.execute(_event_insert(self.session), self._plain_events)
            self._plain_events = []
        ref_events, self._ref_events = self._ref_events, []
        blobs, self._blobs = self._blobs, []
        shas = {sha for sha, *_ in blobs}
        if ref_events:
            row_ids: dict[str, int] = {}
            ids = [event_id for _, event_id, _ in ref_events]
            for chunk in range(0, len(ids), 500):
                row_ids.update((event_id, row_id) for event_id, row_id in self.session.execute(
                    select(Event.event_id, Event.id).where(Event.event_id.in_(ids[chunk:chunk + 500]))))
            refs = []
            for event, event_id, incident_id in ref_events:
                for ref in {r.sha256: r for r in event.evidence}.values():
                    refs.append(dict(event_row_id=row_ids[event_id], incident_id=incident_id, sha256=ref.sha256,
                                     content_type=ref.content_type, size=ref.bytes))
                    shas.add(ref.sha256)
            self.session.execute(insert(table_of(EvidenceRef)), refs)
        if not shas:
            return
        ordered = sorted(shas)
        stored: dict[str, Evidence] = {}
        declared: dict[str, str] = {}
        incidents: dict[str, list[int]] = {}
        linked: set[tuple[int, str]] = set()
        for chunk in range(0, len(ordered), 500):
            part = ordered[chunk:chunk + 500]
            stored.update((b.sha256, b) for b in self.session.scalars(select(Evidence).where(Evidence.sha256.in_(part))))
            for sha, incident_id, content_type in self.session.execute(
                    select(EvidenceRef.sha256, EvidenceRef.incident_id, EvidenceRef.content_type)
                    .where(EvidenceRef.sha256.in_(part)).order_by(EvidenceRef.id)):
                declared[sha] = content_type  # the latest declaration wins
                known = incidents.setdefault(sha, [])
                if incident_id not in known:
                    known.append(incident_id)
            linked.update((incident_id, sha) for incident_id, sha in self.session.execute(
                select(IncidentEvidence.incident_id, IncidentEvidence.sha256)
                .where(IncidentEvidence.sha256.in_(part))))
        new_blobs: dict[str, dict[str, object]] = {}
        for sha, size, sniffed, received_at, outcome in blobs:
            outcome.incident_id = incidents[sha][0] if sha in incidents else None
            if sha in stored or sha in new_blobs:
                outcome.kind = "evidence_duplicate"
                continue
            new_blobs[sha] = dict(sha256=sha, content_type=declared.get(sha, sniffed), size=size,
                                  received_at=received_at)
        for sha, blob in stored.items():
            # The blob came first and its type was guessed; the event's declaration is better.
            if sha in declared and blob.content_type != declared[sha]:
                blob.content_type = declared[sha]
        if new_blobs:
            self.session.execute(insert(table_of(Evidence)), list(new_blobs.values()))
        present = set(stored) | set(new_blobs)
        links = [dict(incident_id=incident_id, sha256=sha) for sha in ordered if sha in present
                 for incident_id in incidents.get(sha, []) if (incident_id, sha) not in linked]
        if links:
            self.session.execute(insert(table_of(IncidentEvidence)), links)

    # -- evidence blobs --------------------------------------------------------------------------

    def _evidence(self, parts: TopicParts, payload: bytes | StoredBlob, received_at: datetime) -> Outcome:
        sha = parts.sha256
        assert sha is not None
        if isinstance(payload, StoredBlob):
            # Checked and written by the receiving process; made durable with the batch's sync.
            size, sniffed = payload.size, payload.sniffed_type
        else:
            if not payload:
                raise _Reject("empty evidence payload")
            # The file is written even for a known blob, in case someone deleted it from disk. In a
            # batch _prewrite_blobs is checking and writing it already: a mismatch fails the batch's
            # wait for its writes, and the messages are handled one by one, where this check names it.
            if sha not in self._blob_writes:
                actual = sha256_hex(payload)
                if actual != sha:
                    raise _Reject(f"sha256 mismatch: the topic names {sha} but the bytes hash to {actual}")
                self.evidence.put(sha, payload)
            size, sniffed = len(payload), sniff_content_type(payload)
        # Its row and links are settled with the transaction's other blobs and refs (_settle_evidence).
        outcome = Outcome("evidence")
        self._blobs.append((sha, size, sniffed, received_at, outcome))
        return outcome

    # -- actuations (door holds) -----------------------------------------------------------------

    def _actuation(self, parts: TopicParts, payload: bytes, received_at: datetime) -> Outcome:
        try:
            record = parse_actuation(payload)
        except ContractError as exc:
            raise _Reject(exc.reason) from None
        self._known_origin(parts, record.site, record.edge, record.camera)
        # No autoflush: in a batch, the incidents it opens are pending and numbered at its end.
        with self.session.no_autoflush:
            if not actuations.store(self.session, record, received_at):
                return Outcome("duplicate", reason=f"actuation {record.event_id} already stored")
            incident = None
            if record.incident_key is not None:
                incident = self._incidents.get(record.incident_key) or actuations.incident_for_key(
                    self.session, record.incident_key)
            escalated = actuations.escalate_if_capped(self.session, self.workflow, record, incident)
        outcome = Outcome("actuation", incident_id=incident.id if incident is not None else None,
                          moved_incident=escalated)
        if escalated and incident is not None:
            # The next level's chief gets the task on their phone.
            new_tasks = [o for o in self.session.new if isinstance(o, Task) and o.incident_id == incident.id]
            self._task_outcomes.append((outcome, new_tasks))
        return outcome

    # -- command replies (recheck closes the loop) ------------------------------------------------

    def _reply(self, parts: TopicParts, payload: bytes, received_at: datetime) -> Outcome:
        reply = self._validate(CommandReply, payload)
        assert isinstance(reply, CommandReply)
        row = self.session.get(CommandRow, str(reply.command_id))
        if row is None:
            return Outcome("reply", reason="not a command this central sent")
        if (row.site, row.edge, row.name) != (parts.site, parts.edge, parts.command):
            raise _Reject(f"reply to command {row.command_id} ({row.name} for {row.site}/{row.edge}) "
                          f"arrived on {parts.site}/{parts.edge}/cmd/{parts.command}")
        if row.status != "pending":
            return Outcome("reply", reason="reply already stored")
        row.status = "ok" if reply.ok else "error"
        row.result, row.errors, row.replied_at = dict(reply.result), list(reply.errors), received_at
        if row.name != "recheck" or row.incident_id is None:
            return Outcome("reply")
        incident = self.session.get(Incident, row.incident_id)
        if incident is None:
            return Outcome("reply")
        snapshot = reply.result.get("snapshot_sha256")
        if isinstance(snapshot, str) and self.session.get(Evidence, snapshot) is not None:
            self.workflow.link(self.session, incident.id, snapshot, "check")
        present = reply.result.get("present")
        actor = edge_actor(parts.edge)
        if incident.state != "checking":
            return Outcome("reply", incident_id=incident.id, reason=f"incident is {incident.state} now")
        if not reply.ok or not isinstance(present, bool):
            audit.append(self.session, incident.id, self.workflow.clock.now(), actor.username, "recheck",
                         incident.state, incident.state, "; ".join(reply.errors) or "no answer",
                         {"command_id": row.command_id})
            return Outcome("reply", incident_id=incident.id, moved_incident=True)
        from central.engine import ActionInput

        if present:
            self.workflow.act(self.session, incident, "fail", actor, ActionInput(
                reason="edge recheck: the hazard is still there", photos=[]))
        else:
            self.workflow.act(self.session, incident, "pass", actor, ActionInput(
                reason="edge recheck: the zone is clear"))
        self.session.flush()
        tasks = list(self.session.scalars(
            select(Task.id).where(Task.incident_id == incident.id, Task.notified_at.is_(None))))
        return Outcome("reply", incident_id=incident.id, moved_incident=True, new_task_ids=tasks)

    # -- edge status and camera health -----------------------------------------------------------

    def _status(self, parts: TopicParts, payload: bytes, received_at: datetime) -> Outcome:
        if not payload:
            return Outcome("ignored", reason="retained status cleared")
        status = self._validate(EdgeStatus, payload)
        assert isinstance(status, EdgeStatus)
        self._same_origin(parts, status.site, status.edge)
        row = self.session.get(EdgeStatusRow, (status.site, status.edge))
        if row is None:
            row = EdgeStatusRow(site=status.site, edge=status.edge)
            self.session.add(row)
        elif row.at > status.at:
            # A retained message replayed on reconnect must not overwrite newer news.
            return Outcome("ignored", reason="older than the stored status")
        row.state, row.at, row.version = status.state, status.at, status.version
        row.cameras, row.received_at = list(status.cameras), received_at
        if status.heartbeat is not None or status.state == "offline":
            row.problems = edge_problems(status.heartbeat)
        return Outcome("status")

    def _health(self, parts: TopicParts, payload: bytes, received_at: datetime) -> Outcome:
        if not payload:
            return Outcome("ignored", reason="retained health cleared")
        health = self._validate(CameraHealth, payload)
        assert isinstance(health, CameraHealth)
        self._same_origin(parts, health.site, health.edge)
        if health.camera != parts.camera:
            raise _Reject(f"payload names camera {health.camera} but arrived on the topic of {parts.camera}")
        key = (health.site, health.edge, health.camera)
        row = self.session.get(CameraHealthRow, key)
        if row is None:
            row = CameraHealthRow(site=health.site, edge=health.edge, camera=health.camera)
            self.session.add(row)
        elif row.since > health.since:
            return Outcome("ignored", reason="older than the stored health")
        row.state, row.since, row.cause, row.received_at = health.state.value, health.since, health.cause, received_at
        return Outcome("health")
