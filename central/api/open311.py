"""Open311 GeoReport v2: hotline (12345) transfers and resident reports enter the same queue.

Requests are routed by location (the grid cell whose ``area`` holds lat/long) and start in
triage, like any incident a monitor must confirm. Formats: ``.json`` only.

Intake needs the API key (outside ``--demo``; ``central serve`` refuses to start without one while
intake is enabled), is rate-limited per key and per address, and reads at most 64 KB of body
(central.api.limits). Reads return the public fields of GeoReport v2 only: no worker's name,
and phone numbers and e-mail addresses are masked in every free-text field (description, address,
status notes). Errors are GeoReport's: ``[{"code", "description"}]``.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from central.api.deps import Ctx, DbSession
from central.api.params import MOMENT_PATTERN
from central.api.routes_auth import client_address
from central.store.tables import Incident
from central.workflow.config import Open311Config
from central.workflow.engine import WorkflowEngine
from central.workflow.incidents import new_incident
from central.workflow.rules import Actor
from central.workflow.vocabulary import IncidentSource

router = APIRouter(prefix="/open311/v2")

OPEN311_ACTOR = Actor("open311", "system", system=True)
# The reporter's photo link rides in the description, one line of its own.
MEDIA_PREFIX = "\nmedia: "


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


class GeoReportError(BaseModel):
    code: int
    description: str


class ServiceOut(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str | list[str] | None
    group: str | None


class RequestCreated(BaseModel):
    service_request_id: str
    service_notice: str | None
    account_id: str | None


class RequestOut(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    why = {400: "a field is missing or wrong", 403: "api_key is missing or wrong, or intake is closed",
           404: "no such request, or intake is not enabled", 413: "the body is over 64 KB",
           415: "not form-encoded or JSON", 429: "too many reports from this key or address; see Retry-After"}
    return {c: {"model": list[GeoReportError], "description": why[c]} for c in codes}


# The report's fields (GeoReport v2 POST Service Request), form-encoded or as a JSON object. The
# server checks the same rules: lat and long together (in range), or an address_string.
_REPORT = {
    "type": "object",
    "properties": {
        "api_key": {"type": "string", "maxLength": 200},
        "service_code": {"type": "string", "maxLength": 40, "description": "from services.json"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {"type": "string", "maxLength": 1000, "description": "empty: none given"},
        "description": {"type": "string", "maxLength": 4000},
        "media_url": {"type": "string", "maxLength": 1000},
    },
    "required": ["service_code"],
    "anyOf": [{"required": ["lat", "long"]},
              {"required": ["address_string"], "properties": {"address_string": {"minLength": 1}},
               "not": {"anyOf": [{"required": ["lat"]}, {"required": ["long"]}]}}],
}
REPORT_FIELDS = frozenset(_REPORT["properties"])
REPORT_BODY = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": _REPORT}, "application/json": {"schema": _REPORT}}}}


def with_services(schema: dict[str, Any], cfg: Open311Config) -> dict[str, Any]:
    """The document with this site's service codes as the report's choices (they come from the
    workflow file, after the routes were declared)."""
    operation = schema.get("paths", {}).get("/open311/v2/requests.json", {}).get("post")
    if operation is None:
        return schema
    schema = copy.deepcopy(schema)
    operation = schema["paths"]["/open311/v2/requests.json"]["post"]
    for media in operation["requestBody"]["content"].values():
        media["schema"]["properties"]["service_code"]["enum"] = [s.service_code for s in cfg.services]
    return schema


@router.get("/services.json", response_model=list[ServiceOut])
def services(ctx: Ctx) -> list[dict[str, Any]]:
    return [{"service_code": s.service_code, "service_name": s.service_name, "description": s.description,
             "metadata": False, "type": "realtime", "keywords": s.keywords, "group": s.group}
            for s in ctx.workflow().config.open311.services]


FORM_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
ID_PATTERN = r"^\d{1,9}$"
ID_RE = re.compile(ID_PATTERN)
IDS_PATTERN = r"^\d{1,9}(,\d{1,9}){0,99}$"
MOMENT_RE = re.compile(MOMENT_PATTERN)
# Personal data a resident may type into a description, masked on the public read side.
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d){8}(?!\d)|(?<!\d)0\d{2,3}[- ]?\d{7,8}(?!\d)")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_personal(text: str | None) -> str | None:
    if text is None:
        return None
    return EMAIL_RE.sub("[e-mail]", PHONE_RE.sub("[phone]", text))


async def _params(request: Request) -> dict[str, str] | str:
    """The report's fields as text (form-encoded, or a JSON object of the documented types), or
    what is wrong with them."""
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "the body is not JSON"  # central.api.limits refuses it first
        if not isinstance(data, dict):
            return "send the report as a JSON object"
        fields = {k: v for k, v in data.items() if k in REPORT_FIELDS}  # other keys: ignored
        for key, value in fields.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number if key in ("lat", "long") else isinstance(value, str)):
                return f"{key} must be {'a number' if key in ('lat', 'long') else 'text'}"
        return {k: str(v) for k, v in fields.items()}
    form = await request.form(max_files=0, max_fields=50)
    return {k: str(v) for k, v in form.items()}


@router.post("/requests.json", status_code=201, response_model=list[RequestCreated], openapi_extra=REPORT_BODY,
             responses=_errors(400, 403, 404, 413, 415, 429))
async def create_request(request: Request, ctx: Ctx, session: DbSession) -> JSONResponse:
    cfg = ctx.workflow().config.open311
    if not cfg.enabled:
        return _error(404, "Open311 intake is not enabled here")
    if not request.headers.get("content-type", "").lower().startswith(FORM_TYPES):
        return _error(415, "send the request as application/x-www-form-urlencoded (GeoReport v2) or JSON")
    p = await _params(request)
    if isinstance(p, str):
        return _error(400, p)
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
    for key, most in (("address_string", 1000), ("description", 4000), ("media_url", 1000), ("api_key", 200)):
        if len(p.get(key, "")) > most:
            return _error(400, f"{key} is at most {most} characters")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return _error(400, "lat/long out of range")
    engine: WorkflowEngine = ctx.workflow()
    now = engine.clock.now()
    cell = engine.grid.locate(lon, lat) if lat is not None and lon is not None else None
    incident = new_incident(
        incident_key=f"open311-{uuid.uuid4()}", hazard=service.hazard or service.service_code,
        site=ctx.site.site if ctx.site else "site", source=IncidentSource.OPEN311, started_at=now, observed_at=now,
        grid_cell=cell, assigned_worker=engine._nearest_worker(cell), max_score=1.0,
        description=p.get("description") or None, address=p.get("address_string") or None, lat=lat, lon=lon,
    )
    if p.get("media_url"):
        incident.description = ((incident.description or "") + MEDIA_PREFIX + p["media_url"]).strip()
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
        # Residents type their own phone number into the address as readily as into the description.
        "address": mask_personal(i.address), "address_id": None, "zipcode": None, "lat": i.lat, "long": i.lon,
        "media_url": mask_personal(media.strip()) if media else None,
    }


def _parse_dt(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not MOMENT_RE.match(value):
        raise ValueError(f"{name} is a W3C date and time with its zone, years 1970-2999, e.g. 2026-11-23T08:00:00Z")
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def _documented(description: str, **schema: Any) -> Any:
    # Declared in the document, checked by the handler: its refusals are GeoReport's 400, not a 422.
    return Query(description=description, json_schema_extra=schema)


@router.get("/requests.json", response_model=list[RequestOut], responses=_errors(400))
def list_requests(
    ctx: Ctx, session: DbSession,
    service_request_id: Annotated[str | None, _documented("comma-separated ids", pattern=IDS_PATTERN)] = None,
    service_code: Annotated[str | None, _documented("comma-separated service codes", maxLength=2000)] = None,
    start_date: Annotated[str | None, _documented("requested at or after", pattern=MOMENT_PATTERN)] = None,
    end_date: Annotated[str | None, _documented("requested before", pattern=MOMENT_PATTERN)] = None,
    status: Annotated[str | None, _documented("open or closed", enum=["open", "closed"])] = None,
) -> JSONResponse:
    query = select(Incident).where(Incident.source == "open311")
    if service_request_id is not None:
        parts = [x.strip() for x in service_request_id.split(",") if x.strip()]
        if not parts or len(parts) > 100 or not all(ID_RE.match(x) for x in parts):
            return _error(400, "service_request_id is a comma-separated list of up to 100 numeric ids")
        ids = [int(x) for x in parts]
        query = query.where(Incident.id.in_(ids))
    if service_code:
        if len(service_code) > 2000:
            return _error(400, "service_code is a comma-separated list of at most 2000 characters")
        query = query.where(Incident.hazard.in_(service_code.split(",")))
    try:
        start, end = _parse_dt(start_date, "start_date"), _parse_dt(end_date, "end_date")
    except ValueError as exc:
        return _error(400, str(exc))
    if status not in (None, "open", "closed"):
        return _error(400, "status is open or closed")
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


@router.get("/requests/{request_id}.json", response_model=list[RequestOut], responses=_errors(400, 404))
def get_request(request_id: Annotated[str, Path(description="digits", json_schema_extra={"pattern": ID_PATTERN})],
                ctx: Ctx, session: DbSession) -> JSONResponse:
    if not ID_RE.match(request_id):
        return _error(400, f"{request_id!r} is not a service request id (digits only)")
    incident = session.get(Incident, int(request_id))
    if incident is None or incident.source != "open311":
        return _error(404, f"no service request {request_id}")
    names = {s.service_code: s.service_name for s in ctx.workflow().config.open311.services}
    return JSONResponse([_request_out(incident, names)])
