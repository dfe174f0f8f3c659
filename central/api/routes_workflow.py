"""Supervision board, silences, statistics and the monthly grid index."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from central.api.deps import Ctx, CurrentActor, DbSession, DeskActor, refusal, require_roles
from central.api.errors import csv_answer, invalid, responses
from central.api.params import Moment, Since, SuppressionId, Until
from central.api.routes_incidents import incident_out, visible
from central.api.schemas_ops import DeliveryOut, IndexRowOut, StatsOut, SupervisionOut, SuppressionOut
from central.reporting import stats, stats_sql
from central.store.read_replica import Freshness
from central.store.tables import Incident, Suppression, WebhookDelivery
from central.workflow.rules import OPEN_STATES, Actor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from central.api.context import ApiContext

router = APIRouter()
T = TypeVar("T")


@router.get("/supervision", response_model=SupervisionOut, responses=responses(401))
def supervision(actor: CurrentActor, session: DbSession, ctx: Ctx) -> dict[str, object]:
    rows = session.scalars(visible(select(Incident), actor).where(Incident.state.in_(OPEN_STATES))
                           .order_by(Incident.stage_deadline_at)).all()
    tree = ctx.load_grid(session)
    by_grid = []
    for node in sorted(tree.nodes.values(), key=lambda n: (tree.depth(n.code), n.code)):
        cells = tree.subtree([node.code])
        mine = [i for i in rows if i.grid_cell in cells]
        if actor.scope is not None and node.code not in actor.scope:
            continue
        by_grid.append({"code": node.code, "name": node.name, "level": node.level, "parent": node.parent,
                        "open": len(mine), "yellow": sum(1 for i in mine if i.deadline_color == "yellow"),
                        "red": sum(1 for i in mine if i.deadline_color == "red"),
                        "supervised": sum(1 for i in mine if i.supervised)})
    return {
        "overdue": [incident_out(i, actor) for i in rows if i.deadline_color == "red"],
        "yellow": [incident_out(i, actor) for i in rows if i.deadline_color == "yellow"],
        "supervised": [incident_out(i, actor) for i in rows if i.supervised],
        "by_grid": by_grid,
    }


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    camera: str = Field(max_length=64, description="a camera of this site, in the caller's grid")
    zone: str | None = Field(None, max_length=64)
    hazard: str | None = Field(None, max_length=40)
    duration_s: float | None = Field(None, gt=0, le=90 * 86400, description="give this or until")
    until: Moment | None = Field(None, description="give this or duration_s")
    reason: str = Field(min_length=1, max_length=500)


def _suppression_out(s: Suppression) -> dict[str, object]:
    return {"id": s.id, "camera": s.camera, "zone": s.zone, "hazard": s.hazard, "until": s.until,
            "reason": s.reason, "created_by": s.created_by, "created_at": s.created_at}


def _check_camera(actor: Actor, ctx: ApiContext, camera: str) -> None:
    """A silence acts on one camera of this site, within the grid scope that covers the camera's
    cell. A camera outside the scope gets the answer of one that does not exist (422), so that a
    silence cannot probe which cameras other grids have."""
    found = ctx.site.camera(camera) if ctx.site is not None else None
    if found is None or not actor.in_scope(found[1].grid_cell):
        if found is not None:
            refusal(actor, f"silence of camera {camera} outside their grid")  # logged; answered as unknown
        raise invalid(("body", "camera"), f"camera {camera!r} is not a camera of this site in your grid; "
                                          "name one from GET /api/v1/sites")


@router.get("/suppressions", response_model=list[SuppressionOut], responses=responses(401, 403))
def list_suppressions(actor: DeskActor, session: DbSession, ctx: Ctx, all: bool = False) -> list[dict[str, object]]:
    query = select(Suppression).order_by(Suppression.id.desc())
    if not all:
        query = query.where(Suppression.until > ctx.workflow().clock.now())
    return [_suppression_out(s) for s in session.scalars(query) if actor.in_scope(ctx.camera_cell(s.camera))]


@router.post("/suppressions", status_code=201, response_model=SuppressionOut, responses=responses(401, 403))
def add_suppression(body: SuppressionIn, session: DbSession, ctx: Ctx,
                    actor: Annotated[Actor, Depends(require_roles("monitor", "admin"))]) -> dict[str, object]:
    _check_camera(actor, ctx, body.camera)
    now = ctx.workflow().clock.now()
    if (body.duration_s is None) == (body.until is None):
        raise invalid(("body", "duration_s"), "give either duration_s or until, not both and not neither")
    until = body.until or now + timedelta(seconds=body.duration_s or 0)
    site = ctx.site.site if ctx.site else None
    row = Suppression(site=site, camera=body.camera, zone=body.zone, hazard=body.hazard, until=until,
                      reason=body.reason, created_by=actor.username, created_at=now)
    session.add(row)
    session.commit()
    return _suppression_out(row)


@router.delete("/suppressions/{suppression_id}", status_code=204, responses=responses(401, 403, 404))
def end_suppression(suppression_id: SuppressionId, session: DbSession, ctx: Ctx,
                    actor: Annotated[Actor, Depends(require_roles("monitor", "admin"))]) -> Response:
    row = session.get(Suppression, suppression_id)
    missing = HTTPException(404, detail=f"no suppression {suppression_id}")
    if row is None:
        raise missing
    if not actor.in_scope(ctx.camera_cell(row.camera)):
        refusal(actor, f"ending silence {suppression_id} of camera {row.camera} outside their grid")
        raise missing  # as if there were none: a silence's id must not tell another grid's exist
    row.until = min(row.until, ctx.workflow().clock.now())
    session.commit()
    return Response(status_code=204)


STATS_MAX_AGE_S = 30.0
MONTH_PATTERN = r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])$"
Format = Annotated[str, Query(pattern="^(json|csv)$", description="csv: text/csv for a spreadsheet")]


def _selection(session: Session, actor: Actor, ctx: ApiContext, grid: str | None, hazard: str | None,
               since: datetime | None, until: datetime | None) -> Select[Any]:
    query = visible(select(Incident), actor)
    if grid is not None:
        query = query.where(Incident.grid_cell.in_(sorted(ctx.load_grid(session).subtree([grid]))))
    if hazard is not None:
        query = query.where(Incident.hazard == hazard)
    if since is not None:
        query = query.where(Incident.started_at >= since)
    if until is not None:
        query = query.where(Incident.started_at < until)
    return query


def _cached(ctx: ApiContext, actor: Actor, key: tuple[Any, ...], compute: Callable[[Session], T]) -> tuple[T, Freshness]:
    """Statistics are recomputed when something changed in this process (the live feed's version
    moved), and at least every STATS_MAX_AGE_S for what other central processes stored. Read from a
    replica (--read-database-url) they are kept one probe interval only: the replica may not have had
    this process's latest change yet, so the feed's version says nothing of what it holds."""
    reads = ctx.read_router()
    chosen = reads.reader()
    now = time.monotonic()
    if chosen[1].source == "replica":
        version: tuple[Any, ...] = ("replica", int(now // reads.probe_interval_s))
    else:
        version = ("primary", ctx.feed.version, int(now // STATS_MAX_AGE_S))
    result, freshness = ctx.stats_cache.get((*version, actor.username, actor.role, actor.scope, *key),
                                            lambda: reads.run(chosen, compute))
    # Figures kept from the primary are current whatever the replica does now: say why it is not read now.
    return result, (chosen[1] if chosen[1].source == "primary" else freshness)


@router.get("/stats", response_model=StatsOut, responses=responses(401) | csv_answer("the figures as rows"))
def get_stats(actor: CurrentActor, ctx: Ctx, response: Response, grid: str | None = None, hazard: str | None = None,
              since: Since = None, until: Until = None, format: Format = "json") -> object:
    """The centre's figures aggregated in the database over any period (central/reporting/stats_sql.py).
    With a read replica they come from it while it is close enough: ``freshness`` and the
    X-Sharpeyes-Read-* headers say where they were read and how stale they may be."""

    def compute(read: Session) -> dict[str, Any]:
        return stats_sql.summary(read, _selection(read, actor, ctx, grid, hazard, since, until), ctx.load_grid(read))

    result, freshness = _cached(ctx, actor, ("stats", grid, hazard, since, until), compute)
    if format == "csv":
        return Response(stats.to_csv(stats.summary_rows(result)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="stats.csv"', **freshness.headers()})
    response.headers.update(freshness.headers())
    return {**result, "freshness": freshness.as_dict()}


def _month_bounds(month: str | None, now: datetime) -> tuple[datetime, datetime, str]:
    if month is None:
        month = now.strftime("%Y-%m")
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise invalid(("query", "month"), "month is YYYY-MM, e.g. 2026-11") from None
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end, month


@router.get("/stats/index", response_model=list[IndexRowOut],
            responses=responses(401) | csv_answer("one row per grid node"))
def get_index(actor: CurrentActor, ctx: Ctx, response: Response,
              month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM, 1970-2999")] = None,
              format: Format = "json") -> object:
    """The month's index per grid node; the X-Sharpeyes-Read-* headers say where it was read (as /stats)."""
    start, end, month = _month_bounds(month, ctx.workflow().clock.now())

    def compute(read: Session) -> list[dict[str, Any]]:
        selection = _selection(read, actor, ctx, None, None, start, end)
        return stats_sql.grid_index(read, selection, ctx.load_grid(read), ctx.workflow().config.index)

    rows, freshness = _cached(ctx, actor, ("index", month), compute)
    table = [dict(row) for row in rows]
    for row in table:
        row["month"] = month
    if actor.scope is not None:
        table = [r for r in table if r["code"] in actor.scope]
    if format == "csv":
        return Response(stats.to_csv(table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="index-{month}.csv"', **freshness.headers()})
    response.headers.update(freshness.headers())
    return table


@router.get("/webhooks/deliveries", response_model=list[DeliveryOut], responses=responses(401, 403))
def deliveries(session: DbSession, _actor: Annotated[Actor, Depends(require_roles("admin"))],
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, object]]:
    rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit))
    return [{"id": r.id, "hook": r.hook, "event": r.event, "incident_id": r.incident_id, "status": r.status,
             "attempts": r.attempts, "next_attempt_at": r.next_attempt_at, "last_status": r.last_status,
             "last_error": r.last_error, "created_at": r.created_at, "delivered_at": r.delivered_at}
            for r in rows]
