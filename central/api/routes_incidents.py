"""Incidents, their events and evidence, as each user is allowed to see them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from sqlalchemy import Select, func, select

from central.api.deps import Ctx, CurrentUser, DbSession, current_user_or_query
from central.api.schemas import EventOut, EvidenceOut, IncidentDetail, IncidentList, IncidentOut
from central.labels import incident_title
from central.tables import Event, Evidence, EvidenceRef, Incident
from central.tokens import Principal

router = APIRouter()


def _visible(query: Select, user: Principal) -> Select:  # type: ignore[type-arg]
    # A grid worker sees the incidents assigned to them and nothing else.
    if user.role == "grid_worker":
        return query.where(Incident.assigned_worker == (user.worker or "\x00"))
    return query


def _out(incident: Incident) -> IncidentOut:
    data = {k: getattr(incident, k) for k in IncidentOut.model_fields if k != "title"}
    return IncidentOut(**data, title=incident_title(incident.hazard, incident.camera, incident.zone))


def evidence_url(sha256: str) -> str:
    return f"/api/v1/evidence/{sha256}"


@router.get("/incidents", response_model=IncidentList)
def list_incidents(
    user: CurrentUser,
    session: DbSession,
    state: str | None = None,
    hazard: str | None = None,
    camera: str | None = None,
    since: Annotated[datetime | None, Query(description="started at or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="started before (RFC 3339)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> IncidentList:
    query = _visible(select(Incident), user)
    for value, column in ((state, Incident.state), (hazard, Incident.hazard), (camera, Incident.camera)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Incident.started_at >= _aware(since, "since"))
    if until is not None:
        query = query.where(Incident.started_at < _aware(until, "until"))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Incident.started_at.desc(), Incident.id.desc()).limit(limit).offset(offset)
    ).all()
    return IncidentList(total=total, items=[_out(r) for r in rows])


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise HTTPException(
            422, detail=f"{name} needs a timezone, e.g. 2026-01-01T00:00:00Z"
        )
    return value


@router.get("/incidents/{incident_id}", response_model=IncidentDetail)
def get_incident(incident_id: int, user: CurrentUser, session: DbSession) -> IncidentDetail:
    incident = session.scalar(_visible(select(Incident).where(Incident.id == incident_id), user))
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no incident {incident_id}")
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
        evidence.setdefault(
            sha,
            EvidenceOut(sha256=sha, content_type=content_type, size=size, available=stored is not None, url=evidence_url(sha)),
        )
    base = _out(incident)
    return IncidentDetail(
        **base.model_dump(),
        events=[
            EventOut(
                event_id=e.event_id,
                phase=e.phase,
                seq=e.seq,
                score=e.score,
                observed_at=e.observed_at,
                received_at=e.received_at,
                objects=e.payload.get("objects", []),
                evidence=[ref["sha256"] for ref in e.payload.get("evidence", [])],
            )
            for e in events
        ],
        evidence=list(evidence.values()),
    )


@router.get("/evidence/{sha256}", response_class=Response)
def get_evidence(
    sha256: str,
    ctx: Ctx,
    session: DbSession,
    user: Annotated[Principal, Depends(current_user_or_query)],
) -> Response:
    blob = session.get(Evidence, sha256.lower())
    if blob is not None and user.role == "grid_worker":
        mine = session.scalar(
            _visible(
                select(EvidenceRef.id).join(Incident, Incident.id == EvidenceRef.incident_id),
                user,
            ).where(EvidenceRef.sha256 == blob.sha256).limit(1)
        )
        if mine is None:
            blob = None
    data = ctx.evidence.read(blob.sha256) if blob is not None else None
    if blob is None or data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no evidence {sha256}")
    # Content-addressed bytes never change, so browsers may keep them.
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{blob.sha256}"'}
    return Response(content=data, media_type=blob.content_type, headers=headers)
