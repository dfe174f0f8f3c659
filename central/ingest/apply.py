"""Write a planned batch (``central.ingest.plan.ChangeSet``) in the caller's transaction.

Plain rows (events, evidence refs and blobs, links, aliases, actuations, dead letters, the fold of
incidents the store held) go in as Core statements, a multi-row INSERT or one executemany UPDATE
per table. New incidents are ORM rows because the workflow engine, the one way state changes,
runs the planned steps on them (receive, triage or register, dispatch, tasks, webhooks, audit).
On SQLite their ids are numbered here, so each is inserted once with its final state.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import JSON, Insert, Text, bindparam, cast, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from central.evidence.store import EvidenceBackend, StoredBlob
from central.fleet import actuations
from central.ingest.model import (
    FOLDED,
    ChangeSet,
    Created,
    Episode,
    Escalate,
    FoldedIncident,
    MaybeRegister,
    Outcome,
    Recheck,
    Step,
)
from central.ingest.view import chunks
from central.store.desired_tables import EdgeConfigReport
from central.store.tables import (
    ActuationRow,
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
from central.workflow import audit
from central.workflow.engine import ActionInput, WorkflowEngine, edge_actor
from central.workflow.incidents import new_incident
from central.workflow.vocabulary import Action, IncidentSource, State

# Bytes of a dead letter's payload kept in the database (the sha256 and size cover the rest).
DEAD_LETTER_PREFIX = 64 * 1024

# Rows a batch creates through the ORM with integer ids. SQLite cannot say which id RETURNING gave
# which row of a multi-row INSERT, so SQLAlchemy inserts such rows one statement each; with the ids
# numbered here the flush sends each table's rows in one executemany instead.
_NUMBERED = (Incident, AuditRecord, Task, WebhookDelivery)
_NEXT_IDS = "sharpeyes.next_ids"


def begin_numbering(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.info[_NEXT_IDS] = {}


def end_numbering(session: Session) -> None:
    session.info.pop(_NEXT_IDS, None)


def _number(session: Session, nexts: dict[type, int], obj: Any) -> None:
    kind = type(obj)
    if kind not in nexts:
        # Read once per transaction. Another writer that takes an id meanwhile makes this flush
        # fail on the primary key, and the batch is retried message by message.
        nexts[kind] = (session.connection().scalar(select(func.max(kind.__table__.c.id))) or 0) + 1
    obj.id = nexts[kind]
    nexts[kind] += 1


@sa_event.listens_for(Session, "before_flush")
def _number_new_rows(session: Session, _context: object, _instances: object) -> None:
    nexts: dict[type, int] | None = session.info.get(_NEXT_IDS)
    if nexts is None:
        return
    for obj in session.new:
        if type(obj) in _NUMBERED and obj.id is None:
            _number(session, nexts, obj)


class FoldConflict(Exception):
    """Another worker folded events into an incident of this batch after the batch read it (two
    workers got events of one episode at once): the transaction is rolled back and the batch is
    stored again from a fresh read (``IngestService``), so neither worker's events are lost."""


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", -1))


def _read_counts(incident: FoldedIncident) -> tuple[int, int]:
    assert incident.read_counts is not None, "an incident the store held comes from the view, with its counts"
    return incident.read_counts


def dead_letter_row(evidence: EvidenceBackend, topic: str, payload: bytes | StoredBlob, reason: str,
                    received_at: Any) -> dict[str, Any]:
    """A dead-letter row; a blob the receiving process stored is read back for it."""
    if isinstance(payload, StoredBlob):
        payload = evidence.read(payload.sha256) or b""
    # A bounded prefix, with the whole payload's sha256 and size: a 32 MB message must not become a
    # 32 MB row (the prefix is enough to see what went wrong).
    return dict(topic=topic, payload=payload[:DEAD_LETTER_PREFIX], reason=reason, received_at=received_at,
                payload_sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))


class Applier:
    def __init__(self, session: Session, workflow: WorkflowEngine, evidence: EvidenceBackend) -> None:
        self.session, self.workflow, self.evidence = session, workflow, evidence
        self._rows: dict[int, Incident] = {}  # id(FoldedIncident) -> its ORM row, for the workflow
        # Outcomes whose new tasks get their ids with the batch's flush (a flush per task costs dearly).
        self._tasks: list[tuple[Outcome, list[Task]]] = []

    def apply(self, changes: ChangeSet) -> None:
        session = self.session
        with session.no_autoflush:  # new incidents are inserted once, after the workflow ran on them
            self._new_incidents(changes.new_incidents)
            self._rows_without_incidents(changes)
            for step in changes.steps:
                self._step(step, changes)
        session.flush()
        self._rows_with_incidents(changes)
        self._edges(changes)
        audit.write_deferred(session)
        session.flush()
        for outcome, ref in changes.incident_of:
            outcome.incident_id = ref if isinstance(ref, int) else ref.id

    # -- incidents ---------------------------------------------------------------------------------

    def _new_incidents(self, folded: list[FoldedIncident]) -> None:
        if not folded:
            return
        nexts: dict[type, int] | None = self.session.info.get(_NEXT_IDS)
        rows = []
        for f in folded:
            row = new_incident(incident_key=f.incident_key, hazard=f.hazard, site=f.site, source=IncidentSource.CAMERA,
                               started_at=f.started_at, observed_at=f.last_observed_at, grid_cell=f.grid_cell,
                               assigned_worker=f.assigned_worker, edge=f.edge, camera=f.camera, zone=f.zone)
            for column in FOLDED:
                setattr(row, column, getattr(f, column))
            if nexts is not None:
                _number(self.session, nexts, row)
            rows.append(row)
        self.session.add_all(rows)
        if nexts is None:
            self.session.flush()  # for their ids
        for f, row in zip(folded, rows, strict=True):
            f.id = row.id
            self._rows[id(f)] = row

    def _row(self, incident: FoldedIncident) -> Incident:
        row = self._rows.get(id(incident))
        if row is None:
            assert incident.id is not None
            found = self.session.get(Incident, incident.id)
            assert found is not None
            row = self._rows[id(incident)] = found
        return row

    def _rows_without_incidents(self, changes: ChangeSet) -> None:
        """What need not wait for new incidents' rows (and what the workflow's steps may read)."""
        session = self.session
        # Incidents the store held (new ones are inserted whole), in id order: two workers updating
        # the same incidents lock their rows in the same order and cannot deadlock.
        changed = sorted(changes.changed_incidents, key=lambda i: i.id or 0)
        if changed:
            # The fold of incidents the store held, before the workflow loads any of them; only where
            # the row is still as read (FoldedIncident.read_counts), else FoldConflict.
            table = table_of(Incident)
            result = session.execute(
                update(table).where(table.c.id == bindparam("b_id"), table.c.event_count == bindparam("b_events"),
                                    table.c.episode_count == bindparam("b_episodes"))
                .values({c: bindparam(c) for c in FOLDED} | {"updated_at": bindparam("b_updated_at")}),
                [dict({c: getattr(i, c) for c in FOLDED}, b_id=i.id, b_updated_at=utcnow(),
                      b_events=_read_counts(i)[0], b_episodes=_read_counts(i)[1]) for i in changed])
            if _rowcount(result) != len(changed):
                raise FoldConflict(f"{len(changed) - _rowcount(result)} of {len(changed)} incident(s) changed "
                                   "since this batch read them")
        if changes.blobs:
            session.execute(insert(table_of(Evidence)), changes.blobs)
        for sha, content_type in changes.blob_types.items():
            session.execute(update(table_of(Evidence)).where(table_of(Evidence).c.sha256 == sha)
                            .values(content_type=content_type))
        if changes.actuations:
            session.execute(insert(table_of(ActuationRow)), changes.actuations)
        for command_id, values in changes.replies:
            session.execute(update(table_of(CommandRow)).where(table_of(CommandRow).c.command_id == command_id)
                            .values(values))
        if changes.dead_letters:
            rows = []
            for m in changes.dead_letters:
                assert m.refusal is not None
                rows.append(dead_letter_row(self.evidence, m.topic, m.payload, m.refusal, m.received_at))
            session.execute(insert(table_of(DeadLetter)), rows)

    def _rows_with_incidents(self, changes: ChangeSet) -> None:
        session = self.session
        if changes.aliases:
            session.execute(insert(table_of(IncidentAlias)),
                            [dict(incident_key=key, incident_id=i.id) for key, i in changes.aliases])
        if changes.events:
            session.execute(_event_insert(session), [dict(values, incident_id=i.id) for values, i in changes.events])
        if changes.refs:
            row_ids: dict[str, int] = {}
            for part in chunks(event_id for event_id, *_ in changes.refs):
                row_ids.update((event_id, row_id) for event_id, row_id in session.execute(
                    select(Event.event_id, Event.id).where(Event.event_id.in_(part))))
            session.execute(insert(table_of(EvidenceRef)), [
                dict(event_row_id=row_ids[event_id], incident_id=i.id, sha256=sha, content_type=content_type, size=size)
                for event_id, i, sha, content_type, size in changes.refs])
        links = {(ref if isinstance(ref, int) else ref.id, sha) for ref, sha in changes.links}
        if links:
            session.execute(insert(table_of(IncidentEvidence)),
                            [dict(incident_id=incident_id, sha256=sha) for incident_id, sha in sorted(links)])

    def _edges(self, changes: ChangeSet) -> None:
        """Edge status and camera health: one row per edge or camera, the newest news wins."""
        for (site, edge), values in changes.statuses.items():
            self._upsert(EdgeStatusRow, dict(site=site, edge=edge), values)
        for (site, edge, camera), values in changes.healths.items():
            self._upsert(CameraHealthRow, dict(site=site, edge=edge, camera=camera), values)
        for (site, edge), values in changes.config_reports.items():
            self._upsert(EdgeConfigReport, dict(site=site, edge=edge), values)

    def _upsert(self, table: type[EdgeStatusRow] | type[CameraHealthRow] | type[EdgeConfigReport], key: dict[str, str],
                values: dict[str, Any]) -> None:
        row = self.session.get(table, tuple(key.values())) or table(**key)
        for column, value in values.items():
            setattr(row, column, value)
        self.session.add(row)

    # -- workflow steps ----------------------------------------------------------------------------

    def _step(self, step: Step, changes: ChangeSet) -> None:
        if isinstance(step, Episode):
            self.workflow.record_episode(self.session, self._row(step.incident), step.incident_key, step.episode_count)
            return
        if isinstance(step, Recheck):
            self._recheck(step, changes)
            return
        row = self._row(step.incident)
        before = row.state
        if isinstance(step, Created):
            self.workflow.on_created(self.session, row, edge_actor(row.edge), step.score)
        elif isinstance(step, MaybeRegister):
            self.workflow.maybe_register(self.session, row, score=step.score)
        else:
            step.outcome.moved_incident = actuations.escalate_if_capped(self.session, self.workflow, step.record, row)
        if row.state != before or isinstance(step, Created | Escalate):
            self._collect_tasks(step.outcome, row.id)

    def _collect_tasks(self, outcome: Outcome, incident_id: int) -> None:
        tasks = [o for o in self.session.new if isinstance(o, Task) and o.incident_id == incident_id]
        if tasks:
            self._tasks.append((outcome, tasks))

    def assign_task_ids(self) -> None:
        for outcome, tasks in self._tasks:
            outcome.new_task_ids = [t.id for t in tasks]

    def _recheck(self, step: Recheck, changes: ChangeSet) -> None:
        """A recheck's answer closes the loop: the zone is clear (pass) or the hazard is still there (fail)."""
        assert step.command.incident_id is not None
        incident = self.session.get(Incident, step.command.incident_id)
        if incident is None:
            return
        outcome, reply = step.outcome, step.reply
        outcome.incident_id = incident.id
        if step.snapshot is not None and not any(
                sha == step.snapshot and (ref if isinstance(ref, int) else ref.id) == incident.id
                for ref, sha in changes.links):
            self.workflow.link(self.session, incident.id, step.snapshot, "check")
        if incident.state != State.CHECKING:
            outcome.reason = f"incident is {incident.state} now"
            return
        actor = edge_actor(step.edge)
        present = reply.result.get("present")
        outcome.moved_incident = True
        if not reply.ok or not isinstance(present, bool):
            audit.append(self.session, incident.id, self.workflow.clock.now(), actor.username, "recheck",
                         incident.state, incident.state, "; ".join(reply.errors) or "no answer",
                         {"command_id": step.command.command_id})
            return
        if present:
            self.workflow.act(self.session, incident, Action.FAIL, actor,
                              ActionInput(reason="edge recheck: the hazard is still there", photos=[]))
        else:
            self.workflow.act(self.session, incident, Action.PASS, actor, ActionInput(reason="edge recheck: the zone is clear"))
        self._collect_tasks(outcome, incident.id)


def _event_insert(session: Session) -> Insert:
    """INSERT of an event row whose payload is the JSON text as received (no re-serialising)."""
    text = bindparam("payload_json", type_=Text)
    # PostgreSQL's json column takes text only through a cast; SQLite keeps JSON as text anyway.
    payload = cast(text, JSON) if session.get_bind().dialect.name == "postgresql" else text
    return insert(table_of(Event)).values(payload=payload)


def apply_changes(session: Session, changes: ChangeSet, workflow: WorkflowEngine, evidence: EvidenceBackend) -> None:
    applier = Applier(session, workflow, evidence)
    applier.apply(changes)
    applier.assign_task_ids()
