"""Health, dead letters and the live change stream."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import func, select, text

from central.api.deps import Ctx, DbSession, current_user_or_cookie, require_roles
from central.api.errors import responses
from central.api.params import Offset
from central.api.schemas import DeadLetterList, DeadLetterOut, HealthOut, ReadyOut
from central.auth.tokens import Principal
from central.reporting.metrics import CONTENT_TYPE
from central.store.tables import DeadLetter

health = APIRouter()
router = APIRouter()

KEEPALIVE_S = 15.0
METRICS_TOKEN_ENV = "SHARPEYES_METRICS_TOKEN"
# Above this many received-but-uncommitted messages the ingest is behind: not ready.
READY_BACKLOG_MAX = 20_000


@health.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut, "description": "the database is unreachable"}})
def healthz(ctx: Ctx) -> JSONResponse:
    try:
        with ctx.sessions() as session:
            session.execute(text("SELECT 1"))
        db_ok = True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" to a probe
        db_ok = False
    mqtt = ctx.mqtt_connected() if ctx.mqtt_connected is not None else None
    body = HealthOut(status="ok" if db_ok else "degraded", database=db_ok, mqtt_connected=mqtt, demo=ctx.demo)
    return JSONResponse(body.model_dump(), status_code=200 if db_ok else 503)


@health.get("/metrics", include_in_schema=False)
def metrics(ctx: Ctx, request: Request) -> Response:
    """Prometheus exposition (central/reporting/metrics.py): counts and timings only, no ids of people. With
    SHARPEYES_METRICS_TOKEN set, the scraper must send it as a bearer token."""
    token = os.environ.get(METRICS_TOKEN_ENV)
    if token and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
        return Response("metrics need the bearer token in SHARPEYES_METRICS_TOKEN\n", status_code=401,
                        media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE)


@health.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut, "description": "not ready; problems says why"}})
def readyz(ctx: Ctx) -> JSONResponse:
    """Ready = the database takes writes, the broker is connected (where this process ingests) and
    the ingest keeps up. /healthz only says the process is alive; load balancers and operators ask
    this one."""
    problems: list[str] = []
    writable = False
    try:
        with ctx.sessions() as session:
            # A write that changes nothing: a read-only or locked database fails it.
            session.execute(text("DELETE FROM leases WHERE name = '__readyz__'"))
            session.rollback()
        writable = True
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot store events now"
        problems.append(f"database not writable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    broker = ctx.mqtt_connected() if ctx.mqtt_connected is not None else None
    if broker is False:
        problems.append("broker not connected: events wait on the broker (and edges keep them) until it is back")
    backlog = ctx.ingest_backlog() if ctx.ingest_backlog is not None else None
    if backlog is not None and backlog > READY_BACKLOG_MAX:
        problems.append(f"ingest backlog {backlog} messages (more than {READY_BACKLOG_MAX}): the database is slow")
    leader = ctx.leader_state() if ctx.leader_state is not None else {}
    redaction = ctx.redactor().ready()
    body = ReadyOut(ready=not problems, problems=problems, database_writable=writable, broker_connected=broker,
                    ingest_backlog=backlog, leader=leader, redaction=redaction or "ready")
    return JSONResponse(body.model_dump(), status_code=200 if not problems else 503)


@router.get("/dead-letters", response_model=DeadLetterList, dependencies=[Depends(require_roles("admin"))],
            responses=responses(401, 403))
def dead_letters(
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> DeadLetterList:
    total = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
    rows = session.scalars(
        select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc()).limit(limit).offset(offset)
    ).all()
    return DeadLetterList(
        total=total,
        items=[
            DeadLetterOut(
                id=r.id,
                topic=r.topic,
                reason=r.reason,
                received_at=r.received_at,
                size=r.size if r.size is not None else len(r.payload),
                payload_sha256=r.payload_sha256,
                truncated=r.size is not None and r.size > len(r.payload),
                payload_preview=r.payload[:400].decode("utf-8", errors="replace"),
            )
            for r in rows
        ],
    )


SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"enum": ["hello", "incidents"]},
    "data": {"type": "string", "pattern": r"^\d+$", "description": "the change feed's version"}}}


@router.get("/stream", response_class=StreamingResponse, responses={
    200: {"description": "server-sent events: hello, then incidents whenever stored incidents change",
          "content": {"text/event-stream": {"schema": SSE_EVENT}}}, **responses(401)})
async def stream(
    request: Request,
    ctx: Ctx,
    _user: Annotated[Principal, Depends(current_user_or_cookie)],
) -> StreamingResponse:
    """Server-sent events: ``event: incidents`` whenever stored incidents change."""

    async def events() -> AsyncIterator[str]:
        last_version = ctx.feed.version
        last_sent = time.monotonic()
        yield f"event: hello\ndata: {last_version}\n\n"
        while not ctx.closing.is_set() and not await request.is_disconnected():
            version = ctx.feed.version
            if version != last_version:
                last_version, last_sent = version, time.monotonic()
                yield f"event: incidents\ndata: {version}\n\n"
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(ctx.stream_poll_s)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
