"""Evidence in and out: worker photo uploads, images served redacted (or, to the desk with a reason,
original), every read on record, the access log, and the holds that keep evidence from the purge."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from central.api.deps import DESK_ROLES, Ctx, CurrentActor, DbSession, current_actor_or_cookie, refusal, require_roles
from central.api.errors import csv_answer, responses
from central.api.params import MAX_ID, IncidentId, Since, Until
from central.api.routes_auth import client_address
from central.api.routes_incidents import _load_visible, evidence_url, visible
from central.api.schemas import UploadOut
from central.api.schemas_ops import EvidenceHoldsOut, LegalHoldOut, PiplRowOut, ReadOut
from central.evidence import access as evidence_access
from central.evidence import pipl
from central.evidence.redaction import VEHICLE_LABELS
from central.evidence.store import sha256_hex, sniff_content_type
from central.store.tables import Event, Evidence, EvidenceHold, EvidenceRef, Incident, IncidentEvidence, utcnow
from central.workflow import audit
from central.workflow.rules import Actor

router = APIRouter()

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_TYPES = ("image/jpeg", "image/png")
IMAGE_TYPES = ("image/jpeg", "image/png")
# Photos are for feedback, which only an assignee (a grid worker or a unit) or an admin gives.
FEEDBACK_ROLES = ("grid_worker", "unit", "admin")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# Nothing served here may be kept by a shared cache or reused from the browser's disk after logout.
NO_STORE = {"Cache-Control": "private, no-store", "Pragma": "no-cache"}


@router.post("/uploads", response_model=UploadOut, status_code=201, responses=responses(400, 401, 403, 409, 413, 415))
async def upload(file: UploadFile, actor: Annotated[Actor, Depends(require_roles(*FEEDBACK_ROLES))],
                 session: DbSession, ctx: Ctx) -> UploadOut:
    # The body was limited (and the token checked) before it was read: central.api.limits.
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, detail=f"photos up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    content_type = sniff_content_type(data)
    if content_type not in UPLOAD_TYPES:
        raise HTTPException(415, detail="upload a JPEG or PNG photo (its bytes, not its name, decide)")
    sha = sha256_hex(data)
    ctx.evidence.put(sha, data)
    row = session.get(Evidence, sha)
    if row is None:
        session.add(Evidence(sha256=sha, content_type=content_type, size=len(data), received_at=utcnow(),
                             uploaded_by=actor.username))
        session.commit()
    elif row.uploaded_by is None and row.purged_at is None:
        # The same bytes as evidence an edge sent: uploading them must not make them the caller's.
        raise HTTPException(409, detail="this photo is already evidence of an incident; take a photo of your own")
    return UploadOut(sha256=sha, content_type=content_type, size=len(data), url=evidence_url(sha))


def _linked_incidents(session: DbSession, sha: str) -> set[int]:
    via_event = select(EvidenceRef.incident_id.label("iid")).where(EvidenceRef.sha256 == sha)
    via_link = select(IncidentEvidence.incident_id.label("iid")).where(IncidentEvidence.sha256 == sha)
    return {i for (i,) in session.execute(via_event.union(via_link))}


def _vehicles(session: DbSession, sha: str) -> list[tuple[float, float, float, float]]:
    """The vehicle boxes of the events that carried this snapshot (normalised), for plate blurring."""
    payloads = session.scalars(select(Event.payload).join(EvidenceRef, EvidenceRef.event_row_id == Event.id)
                               .where(EvidenceRef.sha256 == sha))
    boxes = []
    for payload in payloads:
        for obj in payload.get("objects", []):
            if obj.get("label") in VEHICLE_LABELS and len(obj.get("box", ())) == 4:
                x1, y1, x2, y2 = (float(v) for v in obj["box"])
                boxes.append((x1, y1, x2, y2))
    return boxes


IMAGE_ANSWER: dict[int | str, dict[str, object]] = {
    200: {"description": "the image (redacted unless the original was asked for), or a video clip's original",
          "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in (*IMAGE_TYPES, "video/mp4")}},
}


@router.get("/evidence/{sha256}", response_class=Response, responses=IMAGE_ANSWER | responses(400, 401, 403, 404, 410))
def get_evidence(
    sha256: str,
    request: Request,
    ctx: Ctx,
    session: DbSession,
    actor: Annotated[Actor, Depends(current_actor_or_cookie)],
    original: Annotated[bool, Query(description="the unredacted bytes (desk roles, with a reason)")] = False,
    reason: Annotated[str | None, Query(max_length=500, description="why the original is needed; recorded")] = None,
) -> Response:
    """An evidence blob: faces and plates blurred, unless a desk user asks for the original with a reason.

    Video clips cannot be redacted frame by frame here, so they are served only as originals. Every
    read is appended to the audit chain of each incident the blob belongs to (visible to the reader).
    """
    sha = sha256.lower()
    missing = HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no evidence {sha256}")
    blob = session.get(Evidence, sha) if SHA_RE.match(sha) else None
    if blob is None:
        raise missing
    linked = _linked_incidents(session, sha)
    readable = set(session.scalars(visible(select(Incident.id), actor).where(Incident.id.in_(linked)))) if linked else set()
    if not readable and blob.uploaded_by != actor.username and actor.role != "admin":
        raise refusal(actor, f"evidence {sha} belongs to no incident in scope", status.HTTP_404_NOT_FOUND,
                      detail=f"no evidence {sha256}")
    is_image = blob.content_type in IMAGE_TYPES
    if original or not is_image:
        if actor.role not in DESK_ROLES:
            raise refusal(actor, f"asked for the original of {sha}", status.HTTP_403_FORBIDDEN,
                          detail="originals (and video clips) are shown only to desk roles (admin, monitor, supervisor, "
                                 "grid chief), with a reason")
        if not reason or len(reason.strip()) < 4:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                detail="say why the original is needed (?original=true&reason=...); the reason is recorded")
    if blob.purged_at is not None:
        raise HTTPException(status.HTTP_410_GONE, detail=f"evidence {sha256} was deleted on {blob.purged_at:%Y-%m-%d} "
                                                         "under the retention policy")
    data = ctx.evidence.read(sha)
    if data is None:
        raise missing
    variant = "original" if (original or not is_image) else "redacted"
    headers = dict(NO_STORE)
    if variant == "redacted":
        redacted = ctx.redactor().redact(sha, data, _vehicles(session, sha))
        data, media_type = redacted.data, redacted.content_type
        headers["X-Redaction"] = "failed" if redacted.failed else f"faces={redacted.faces} plates={redacted.plates}"
        if redacted.failed:
            variant = "withheld"
    else:
        media_type = blob.content_type
    evidence_access.record_reads(session, readable, evidence_access.EvidenceRead(
        actor.username, actor.role, sha, variant, reason.strip() if reason else None, client_address(request),
        utcnow()))
    if not readable:
        evidence_access.access_log.info("%s (%s) read %s evidence %s (no incident yet) from %s", actor.username,
                                        actor.role, variant, sha, client_address(request))
    return Response(content=data, media_type=media_type, headers=headers)


AuditReaders = Annotated[Actor, Depends(require_roles("admin", "supervisor"))]


@router.get("/access-log", response_model=list[ReadOut], responses=responses(401, 403) | csv_answer("the reads"))
def access_log(actor: AuditReaders, ctx: Ctx,
               incident: int | None = Query(None, ge=1, le=MAX_ID),
               since: Since = None, until: Until = None,
               format: str = Query("json", pattern="^(json|csv)$"),
               limit: int = Query(1000, ge=1, le=100_000)) -> Response:
    """Who read which evidence, when, from where, original or redacted and why (admin: everything;
    a supervisor: the incidents in their grid). ``format=csv`` for the review. An export: read from
    the replica when there is one, the X-Sharpeyes-Read-* headers saying where and how stale."""
    query = evidence_access.reads_query(incident, since, until)
    if actor.role != "admin":
        query = query.where(evidence_access.AuditRecord.incident_id.in_(visible(select(Incident.id), actor)))
    rows, freshness = ctx.read_router().read(
        lambda read: [evidence_access.read_row(r) for r in read.scalars(query.limit(limit))])
    headers = {**NO_STORE, **freshness.headers()}
    if format == "csv":
        return PlainTextResponse(evidence_access.as_csv(rows), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="access-log.csv"', **headers})
    return JSONResponse(rows, headers=headers)


@router.get("/incidents/{incident_id}/reads", response_model=list[ReadOut], responses=responses(401, 404))
def incident_reads(incident_id: IncidentId, actor: CurrentActor, session: DbSession) -> list[dict[str, object]]:
    """Who looked at this incident's evidence (the incident page's "who looked")."""
    _load_visible(session, incident_id, actor)
    return [evidence_access.read_row(r) for r in session.scalars(evidence_access.reads_query(incident_id).limit(500))]


@router.get("/pipl-register", response_model=list[PiplRowOut],
            responses=responses(401, 403) | csv_answer("one row per camera"))
def pipl_register(actor: AuditReaders, ctx: Ctx, format: str = Query("json", pattern="^(json|csv)$")) -> Response:
    """Per camera: purpose, legal basis, signage, impact assessment, retention, and what is missing."""
    rows = pipl.register(ctx.site, ctx.workflow().config.retention) if ctx.site is not None else []
    rows = [r for r in rows if actor.in_scope(r["grid_cell"] if isinstance(r["grid_cell"], str) else None)]
    if format == "csv":
        return PlainTextResponse(pipl.as_csv(rows), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="pipl-register.csv"'})
    return JSONResponse(rows)


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    hold: bool
    reason: str = Field(min_length=4, max_length=500)


@router.put("/incidents/{incident_id}/legal-hold", response_model=LegalHoldOut, responses=responses(401, 403, 404))
def legal_hold(incident_id: IncidentId, body: HoldIn, session: DbSession,
               actor: Annotated[Actor, Depends(require_roles("admin", "supervisor"))]) -> dict[str, object]:
    """Keep (or stop keeping) an incident's evidence past its retention period; recorded in its audit."""
    incident = _load_visible(session, incident_id, actor, "legal hold")
    incident.legal_hold = body.hold
    audit.append(session, incident.id, utcnow(), actor.username, "legal_hold" if body.hold else "legal_hold_released",
                 incident.state, incident.state, body.reason, {})
    session.commit()
    audit.forget_tips(session)
    return {"incident_id": incident.id, "legal_hold": incident.legal_hold}


class EvidenceHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    holder: str = Field(min_length=1, max_length=100, description="e.g. dataset:ebike-2026-12")
    reason: str | None = Field(None, max_length=500)


@router.put("/evidence/{sha256}/holds", response_model=EvidenceHoldsOut, responses=responses(401, 403, 404))
def hold_evidence(sha256: str, body: EvidenceHoldIn, session: DbSession,
                  _actor: Annotated[Actor, Depends(require_roles("admin"))]) -> dict[str, object]:
    """Keep a blob while something outside the incident store (a training dataset) uses it."""
    sha = sha256.lower()
    if not SHA_RE.match(sha) or session.get(Evidence, sha) is None:
        raise HTTPException(404, detail=f"no evidence {sha256}")
    if session.get(EvidenceHold, (sha, body.holder)) is None:
        session.add(EvidenceHold(sha256=sha, holder=body.holder, reason=body.reason, at=utcnow()))
        session.commit()
    holders = list(session.scalars(select(EvidenceHold.holder).where(EvidenceHold.sha256 == sha)))
    return {"sha256": sha, "holders": holders}


@router.delete("/evidence/{sha256}/holds/{holder}", response_model=EvidenceHoldsOut,
               responses=responses(401, 403, 404))
def release_evidence(sha256: str, holder: str, session: DbSession,
                     _actor: Annotated[Actor, Depends(require_roles("admin"))]) -> dict[str, object]:
    sha = sha256.lower()
    row = session.get(EvidenceHold, (sha, holder))
    if row is None:
        raise HTTPException(404, detail=f"no hold {holder!r} on {sha256}")
    session.delete(row)
    session.commit()
    holders = list(session.scalars(select(EvidenceHold.holder).where(EvidenceHold.sha256 == sha)))
    return {"sha256": sha, "holders": holders}
