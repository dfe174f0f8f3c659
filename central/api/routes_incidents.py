"""Incidents as each user may see them, the workflow actions on them, their history and uploads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import Select, false, func, or_, select

from central.api.deps import DESK_ROLES, Ctx, CurrentActor, DbSession, refusal
from central.api.errors import invalid, responses
from central.api.params import IncidentId, Offset, Since, Until
from central.api.schemas import (
    ActionIn,
    ActuationOut,
    AuditOut,
    CheckOut,
    EventOut,
    EvidenceOut,
    FeedbackOut,
    IncidentDetail,
    IncidentList,
    IncidentOut,
    LabelBox,
    LabelOut,
    LabelsIn,
)
from central.api.schemas_ops import VerifyOut
from central.fleet import actuations
from central.learning import review_labels
from central.store.tables import (
    AuditRecord,
    CommandRow,
    Event,
    Evidence,
    EvidenceRef,
    Feedback,
    Incident,
    IncidentEvidence,
)
from central.workflow import audit
from central.workflow.engine import ActionError, ActionInput
from central.workflow.labels import incident_title
from central.workflow.rules import (
    Actor,
    Forbidden,
    IllegalTransition,
    MissingReason,
    access_rule,
    allowed_actions,
    can_see,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter()

def visible(query: Select, actor: Actor) -> Select:
    """``workflow.access_rule`` as a WHERE clause: the SQL form of ``workflow.can_see``."""
    rule = access_rule(actor)
    if rule.everything:
        return query
    terms = []
    if rule.unit is not None:
        terms.append(Incident.assigned_unit == rule.unit)
    if rule.worker is not None:
        terms.append(Incident.assigned_worker == rule.worker)
    if rule.cells:
        terms.append(Incident.grid_cell.in_(sorted(rule.cells)))
    return query.where(or_(*terms) if terms else false())


def incident_out(incident: Incident, actor: Actor) -> IncidentOut:
    data = {k: getattr(incident, k) for k in IncidentOut.model_fields if k not in ("title", "allowed_actions")}
    return IncidentOut(
        **data,
        title=incident_title(incident.hazard, incident.camera or incident.source, incident.zone),
        allowed_actions=allowed_actions(actor, incident),
    )


def evidence_url(sha256: str) -> str:
    return f"/api/v1/evidence/{sha256}"


@router.get("/incidents", response_model=IncidentList)
def list_incidents(
    actor: CurrentActor,
    session: DbSession,
    ctx: Ctx,
    state: str | None = None,
    hazard: str | None = None,
    camera: str | None = None,
    grid: Annotated[str | None, Query(description="a grid node: its whole subtree")] = None,
    source: str | None = None,
    supervised: bool | None = None,
    color: Annotated[str | None, Query(description="green, yellow or red")] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> IncidentList:
    query = visible(select(Incident), actor)
    for value, column in ((state, Incident.state), (hazard, Incident.hazard), (camera, Incident.camera),
                          (source, Incident.source), (color, Incident.deadline_color)):
        if value is not None:
            query = query.where(column == value)
    if supervised is not None:
        query = query.where(Incident.supervised.is_(supervised))
    if grid is not None:
        query = query.where(Incident.grid_cell.in_(sorted(ctx.load_grid(session).subtree([grid]))))
    if since is not None:
        query = query.where(Incident.started_at >= since)
    if until is not None:
        query = query.where(Incident.started_at < until)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Incident.started_at.desc(), Incident.id.desc()).limit(limit).offset(offset)
    ).all()
    return IncidentList(total=total, items=[incident_out(r, actor) for r in rows])


def _load_visible(session: Session, incident_id: int, actor: Actor, doing: str = "read") -> Incident:
    """The incident, or 404 alike when it does not exist and when it lies outside the actor's
    scope: no answer may tell another grid's incidents exist (the refusal is logged all the same)."""
    incident = session.get(Incident, incident_id)
    missing = f"no incident {incident_id}"
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=missing)
    if not can_see(actor, incident):
        raise refusal(actor, f"{doing} of incident {incident_id} outside their grid", status.HTTP_404_NOT_FOUND,
                      missing)
    return incident


# Which key of an action's body a workflow refusal is about, by the words it uses.
_ACTION_KEYS = (("target_id", "target_id"), ("merge", "target_id"), ("close_reason", "close_reason"),
                ("photo", "photos"), ("note", "note"), ("mode", "mode"), ("automatic", "mode"), ("unit", "unit"),
                ("worker", "worker"), ("reason", "reason"))


def _action_key(message: str) -> list[str]:
    return ["body", next((key for word, key in _ACTION_KEYS if word in message), "reason")]


def detail(session: Session, incident: Incident, actor: Actor) -> IncidentDetail:
    incident_id = incident.id
    events = session.scalars(
        select(Event).where(Event.incident_id == incident_id).order_by(Event.observed_at, Event.seq)
    ).all()
    refs = session.execute(
        select(EvidenceRef.sha256, EvidenceRef.content_type, EvidenceRef.size, Evidence.sha256)
        .outerjoin(Evidence, Evidence.sha256 == EvidenceRef.sha256)
        .where(EvidenceRef.incident_id == incident_id)
        .order_by(EvidenceRef.id)
    ).all()
    evidence: dict[str, EvidenceOut] = {}
    for sha, content_type, size, stored in refs:
        evidence.setdefault(sha, EvidenceOut(sha256=sha, content_type=content_type, size=size,
                                             available=stored is not None, url=evidence_url(sha)))
    linked = session.execute(
        select(IncidentEvidence.sha256, IncidentEvidence.kind, Evidence.content_type, Evidence.size)
        .join(Evidence, Evidence.sha256 == IncidentEvidence.sha256)
        .where(IncidentEvidence.incident_id == incident_id, IncidentEvidence.kind != "edge")
        .order_by(IncidentEvidence.linked_at)
    ).all()
    for sha, kind, content_type, size in linked:
        evidence.setdefault(sha, EvidenceOut(sha256=sha, content_type=content_type, size=size, available=True,
                                             url=evidence_url(sha), kind=kind))
    feedback = session.scalars(select(Feedback).where(Feedback.incident_id == incident_id).order_by(Feedback.id))
    checks = session.scalars(
        select(CommandRow).where(CommandRow.incident_id == incident_id, CommandRow.name == "recheck")
        .order_by(CommandRow.sent_at)
    )
    base = incident_out(incident, actor)
    holding = sorted({r.actuator for r in actuations.holding(session, incident)})
    return IncidentDetail(
        **base.model_dump(),
        events=[
            EventOut(event_id=e.event_id, phase=e.phase, seq=e.seq, score=e.score, observed_at=e.observed_at,
                     received_at=e.received_at, objects=e.payload.get("objects", []),
                     evidence=[ref["sha256"] for ref in e.payload.get("evidence", [])])
            for e in events
        ],
        evidence=list(evidence.values()),
        feedback=[FeedbackOut(actor=f.actor, at=f.at, note=f.note, photos=list(f.photos or [])) for f in feedback],
        checks=[
            CheckOut(command_id=c.command_id, mode="auto", actor=c.actor, sent_at=c.sent_at, replied_at=c.replied_at,
                     status=c.status, present=(c.result or {}).get("present"),
                     snapshot_sha256=(c.result or {}).get("snapshot_sha256"), errors=list(c.errors or []))
            for c in checks
        ],
        actuations=[ActuationOut.model_validate(r) for r in actuations.for_incident(session, incident)],
        holding=holding,
        can_release_hold=bool(holding) and may_release(actor, incident),
    )


def may_release(actor: Actor, incident: Incident) -> bool:
    """Desk roles in scope, and the property unit the incident is assigned to, may release a hold."""
    if not can_see(actor, incident):
        return False
    return actor.role in DESK_ROLES or (actor.role == "unit" and actor.unit is not None
                                        and incident.assigned_unit == actor.unit)


READ = responses(401, 404)


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, responses=READ)
def get_incident(incident_id: IncidentId, actor: CurrentActor, session: DbSession) -> IncidentDetail:
    return detail(session, _load_visible(session, incident_id, actor), actor)


@router.post("/incidents/{incident_id}/actions/{action}", response_model=IncidentDetail,
             responses=responses(401, 403, 404, 409))
def act(incident_id: IncidentId, action: Annotated[str, Path(max_length=40)], body: ActionIn, actor: CurrentActor,
        session: DbSession, ctx: Ctx) -> IncidentDetail:
    incident = _load_visible(session, incident_id, actor, action)
    try:
        ctx.workflow().act(session, incident, action, actor, ActionInput(**body.model_dump()))
        if action in ("confirm", "dismiss"):  # every review is a labelled picture (central/learning/review_labels.py)
            review_labels.record_verdict(session, incident, action, actor.username, body.reason,
                                         ctx.workflow().clock.now())
    except IllegalTransition as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail={"error": str(exc), "state": exc.state, "allowed": exc.allowed}) from None
    except Forbidden as exc:
        session.rollback()
        raise refusal(actor, str(exc)) from None
    except (MissingReason, ActionError) as exc:
        session.rollback()
        raise invalid(_action_key(str(exc)), str(exc)) from None
    session.commit()
    ctx.changed()
    return detail(session, incident, actor)


@router.get("/incidents/{incident_id}/labels", response_model=LabelOut, responses=READ)
def get_labels(incident_id: IncidentId, actor: CurrentActor, session: DbSession) -> LabelOut:
    """The incident's labelled picture: its raw frame and the boxes (as reviewed, else as detected)."""
    incident = _load_visible(session, incident_id, actor)
    found = review_labels.first_frame(session, incident)
    if found is None:
        raise HTTPException(404, detail=f"incident {incident_id} has no camera picture")
    event, frame = found
    row = review_labels.latest(session, incident_id)
    if row is None:
        detected = [{"label": o["label"], "box": o["box"]} for o in event.payload.get("objects", [])]
        return LabelOut(frame_sha256=frame, verdict=None, boxes=[LabelBox(**b) for b in detected], reviewer=None, at=None)
    return LabelOut(frame_sha256=frame, verdict=row.verdict, boxes=[LabelBox(**b) for b in row.boxes],
                    reviewer=row.reviewer, at=row.at.isoformat())


@router.put("/incidents/{incident_id}/labels", response_model=LabelOut, responses=responses(401, 403, 404))
def put_labels(incident_id: IncidentId, body: LabelsIn, actor: CurrentActor, session: DbSession, ctx: Ctx) -> LabelOut:
    """Replace the boxes of the incident's picture (move, resize, relabel, delete, add a missed object);
    desk roles only (a worker or unit never labels); recorded in the incident's audit trail."""
    incident = _load_visible(session, incident_id, actor, "labelling")
    if actor.role not in DESK_ROLES:
        raise refusal(actor, f"labelling incident {incident_id}",
                      detail="only monitors, supervisors, grid chiefs and admins label pictures")
    try:
        row = review_labels.record_edit(session, incident, [b.model_dump() for b in body.boxes], actor.username,
                                        ctx.workflow().clock.now())
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc)) from None
    session.commit()
    ctx.changed()
    return LabelOut(frame_sha256=row.frame_sha256, verdict=row.verdict, boxes=body.boxes, reviewer=row.reviewer,
                    at=row.at.isoformat())


@router.get("/incidents/{incident_id}/history", response_model=list[AuditOut], responses=READ)
def history(incident_id: IncidentId, actor: CurrentActor, session: DbSession) -> list[AuditOut]:
    _load_visible(session, incident_id, actor)
    rows = session.scalars(select(AuditRecord).where(AuditRecord.incident_id == incident_id)
                           .order_by(AuditRecord.seq))
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/incidents/{incident_id}/history/verify", response_model=VerifyOut, responses=READ)
def verify_history(incident_id: IncidentId, actor: CurrentActor, session: DbSession) -> dict[str, object]:
    _load_visible(session, incident_id, actor)
    count, breaks = audit.verify(session, incident_id)
    return {"records": count, "ok": not breaks, "breaks": [b.problem for b in breaks]}
