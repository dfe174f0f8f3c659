"""Open311 GeoReport v2: hotline (12345) transfers and resident reports enter the same queue.

Requests are routed by location (the grid cell whose ``area`` holds lat/long) and start in
triage, like any incident a monitor must confirm. Formats: ``.json`` only.

Intake needs the API key (outside ``--demo``; ``central serve`` refuses to start without one while
intake is enabled), is rate-limited per key and per address, and reads at most 64 KB of body
(central.api.limits). Reads return the public fields of GeoReport v2 only: no worker's name,
and phone numbers and e-mail addresses in descriptions are masked.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from central.api.deps import Ctx, DbSession
from central.api.routes_auth import client_address
from central.engine import WorkflowEngine
from central.incidents import new_incident
from central.tables import Incident
from central.vocabulary import IncidentSource
from central.workflow import Actor

router = APIRouter(prefix="/open311/v2")

OPEN311_ACTOR = Actor("open311", "system", system=True)
# The reporter's photo link rides in the description, one line of its own.
MEDIA_PREFIX = "\nmedia: "


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


@router.get("/services.json")
def services(ctx: Ctx) -> list[dict[str, Any]]:
    return [{"service_code": s.service_code, "service_name": s.service_name, "description": s.description,
             "metadata": False, "type": "realtime", "keywords": s.keywords, "group": s.group}
            for s in ctx.workflow().config.open311.services]


FORM_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
ID_RE = re.compile(r"^\d{1,9}$")
# Personal data a resident may type into a description, masked on the public read side.
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d){8}(?!\d)|(?<!\d)0\d{2,3}[- ]?\d{7,8}(?!\d)")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_personal(text: str | None) -> str | None:
    if text is None:
        return None
    return EMAIL_RE.sub("[e-mail]", PHONE_RE.sub("[phone]", text))


async def _params(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return {k: str(v) for k, v in data.items() if v is not None} if isinstance(data, dict) else {}
    form = await request.form(max_files=0, max_fields=50)
    return {k: str(v) for k, v in form.items()}


@router.post("/requests.json")
async def create_request(request: Request, ctx: Ctx, session: DbSession) -> JSONResponse:
    cfg = ctx.workflow().config.open311
    if not cfg.enabled:
        return _error(404, "Open311 intake is not enabled here")
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return _error(415, "send the request as application/x-www-form-urlencoded (GeoReport v2) or JSON")
    p = await _params(request)
    address = client_address(request)
    wait = ctx.open311_limiter().allow(f"address:{address}", f"key:{p.get('api_key', '')}")
    if wait is not None:
        response = _error(429, f"too many requests; at most {cfg.rate_per_minute} a minute per key and address")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    required = cfg.required_key()
    if required is None and not ctx.demo:
        return _error(403, "Open311 intake is closed: no API key is configured (open311.api_key_env)")
    if required and not hmac.compare_digest(p.get("api_key", "").encode(), required.encode()):
        return _error(403, "api_key is missing or wrong")
    service = next((s for s in cfg.services if s.service_code == p.get("service_code")), None)
    if service is None:
        return _error(400, f"service_code {p.get('service_code')!r} is not offered; see services.json")
    try:
        lat = float(p["lat"]) if p.get("lat") else None
        lon = float(p["long"]) if p.get("long") else None
    except ValueError:
        return _error(400, "lat and long must be numbers")
    if (lat is None) != (lon is None) or (lat is None and not p.get("address_string")):
        return _error(400, "give lat and long, or address_string")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return _error(400, "lat/long out of range")
    engine: WorkflowEngine = ctx.workflow()
    now = engine.clock.now()
    cell = engine.grid.locate(lon, lat) if lat is not None and lon is not None else None
    incident = new_incident(
        incident_key=f"open311-{uuid.uuid4()}", hazard=service.hazard or service.service_code,
        site=ctx.site.site if ctx.site else "site", source=IncidentSource.OPEN311, started_at=now, observed_at=now,
        grid_cell=cell, assigned_worker=engine._nearest_worker(cell), max_score=1.0,
        description=p.get("description", "")[:4000] or None, address=p.get("address_string") or None, lat=lat, lon=lon,
    )
    if p.get("media_url"):
        incident.description = ((incident.description or "") + MEDIA_PREFIX + p["media_url"][:1000]).strip()
    session.add(incident)
    session.flush()
    engine.on_created(session, incident, OPEN311_ACTOR)
    session.commit()
    ctx.changed()
    return JSONResponse([{"service_request_id": str(incident.id),
                          "service_notice": "已受理 received; routed to grid " + (cell or "the dispatch desk"),
                          "account_id": None}], status_code=201)


def _request_out(i: Incident, names: dict[str, str]) -> dict[str, Any]:
    description, media = i.description, None
    if description and MEDIA_PREFIX.strip() in description:
        description, _, media = description.rpartition(MEDIA_PREFIX.strip())
        description = description.strip() or None
    notes = i.state if i.state != "closed" else f"closed: {i.close_reason or ''}"
    # A worker's name is personal data; the public learns which unit or that the grid handles it.
    agency = i.assigned_unit or ("grid" if i.assigned_worker else None)
    return {
        "service_request_id": str(i.id), "status": "closed" if i.state == "closed" else "open",
        "status_notes": notes, "service_name": names.get(i.hazard, i.hazard), "service_code": i.hazard,
        "description": mask_personal(description), "agency_responsible": agency,
        "service_notice": None, "requested_datetime": i.started_at.isoformat(),
        "updated_datetime": (i.updated_at or i.started_at).isoformat(),
        "expected_datetime": i.stage_deadline_at.isoformat() if i.stage_deadline_at else None,
        "address": i.address, "address_id": None, "zipcode": None, "lat": i.lat, "long": i.lon,
        "media_url": media.strip() if media else None,
    }


def _parse_dt(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("dates need a timezone (W3C format, e.g. 2026-11-23T08:00:00Z)")
    return parsed


@router.get("/requests.json")
def list_requests(ctx: Ctx, session: DbSession, service_request_id: str | None = None,
                  service_code: str | None = None, start_date: str | None = None, end_date: str | None = None,
                  status: str | None = None) -> JSONResponse:
    query = select(Incident).where(Incident.source == "open311")
    if service_request_id:
        parts = [x.strip() for x in service_request_id.split(",") if x.strip()]
        if not parts or len(parts) > 100 or not all(ID_RE.match(x) for x in parts):
            return _error(400, "service_request_id is a comma-separated list of up to 100 numeric ids")
        ids = [int(x) for x in parts]
        query = query.where(Incident.id.in_(ids))
    if service_code:
        query = query.where(Incident.hazard.in_(service_code.split(",")))
    try:
        start, end = _parse_dt(start_date), _parse_dt(end_date)
    except ValueError as exc:
        return _error(400, str(exc))
    if start is not None:
        query = query.where(Incident.started_at >= start)
    if end is not None:
        query = query.where(Incident.started_at < end)
    if status == "open":
        query = query.where(Incident.state != "closed")
    elif status == "closed":
        query = query.where(Incident.state == "closed")
    names = {s.service_code: s.service_name for s in ctx.workflow().config.open311.services}
    rows = session.scalars(query.order_by(Incident.id.desc()).limit(1000))
    return JSONResponse([_request_out(i, names) for i in rows])


@router.get("/requests/{request_id}.json")
def get_request(request_id: str, ctx: Ctx, session: DbSession) -> JSONResponse:
    if not ID_RE.match(request_id):
        return _error(400, f"{request_id!r} is not a service request id (digits only)")
    incident = session.get(Incident, int(request_id))
    if incident is None or incident.source != "open311":
        return _error(404, f"no service request {request_id}")
    names = {s.service_code: s.service_name for s in ctx.workflow().config.open311.services}
    return JSONResponse([_request_out(incident, names)])
