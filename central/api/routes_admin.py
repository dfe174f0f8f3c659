"""The grid, units and users; sites, edges and cameras for operators; commands to edges."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select

from central.api.deps import DESK_ROLES, Ctx, CurrentActor, DbSession, DeskActor, overlaps, refusal, require_roles
from central.api.errors import invalid, responses
from central.api.routes_workflow import _month_bounds
from central.api.schemas_ops import (
    CommandOut,
    GridNodeOut,
    GridNodeSaved,
    SiteOut,
    UnitOut,
    UserOut,
)
from central.auth.users import Password, bump_token_version, hash_password
from central.fleet import actuations
from central.reporting import stats_sql
from central.store.tables import CameraHealthRow, CommandRow, EdgeStatusRow, GridNode, Incident, User
from central.workflow.config import WorkflowConfig
from central.workflow.grid import GridTree, scope_for
from central.workflow.rules import OPEN_STATES, Actor, can_see

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from central.api.context import ApiContext

router = APIRouter()

Role = Literal["admin", "monitor", "supervisor", "grid_chief", "grid_worker", "unit"]


@router.get("/grid", response_model=list[GridNodeOut], responses=responses(401))
def grid(actor: CurrentActor, session: DbSession, ctx: Ctx) -> list[dict[str, object]]:
    tree = ctx.load_grid(session)
    start, end, month = _month_bounds(None, ctx.workflow().clock.now())
    month_rows = select(Incident).where(Incident.started_at >= start, Incident.started_at < end)
    index = {r["code"]: r for r in stats_sql.grid_index(session, month_rows, tree, ctx.workflow().config.index)}
    # Open and overdue incidents per cell, counted in the database.
    open_counts = {cell: (int(n), int(red)) for cell, n, red in session.execute(
        select(Incident.grid_cell, func.count(), func.coalesce(func.sum(case((Incident.deadline_color == "red", 1),
                                                                             else_=0)), 0))
        .where(Incident.state.in_(OPEN_STATES)).group_by(Incident.grid_cell))}
    out: list[dict[str, object]] = []
    for node in sorted(tree.nodes.values(), key=lambda n: (tree.depth(n.code), n.code)):
        if actor.scope is not None and node.code not in actor.scope:
            continue
        mine = [open_counts[c] for c in tree.subtree([node.code]) if c in open_counts]
        idx = index[node.code]
        out.append({"code": node.code, "name": node.name, "level": node.level, "parent": node.parent,
                    "workers": list(node.workers), "open": sum(n for n, _ in mine), "overdue": sum(r for _, r in mine),
                    "index": {"month": month, "score": idx["score"], "color": idx["color"]}})
    return out


class GridNodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    level: str = Field("grid", min_length=1, max_length=32)
    parent: str | None = Field(None, max_length=64)
    workers: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)


GridCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.put("/grid/{code}", response_model=GridNodeSaved, responses=responses(401, 403))
def put_grid(code: GridCode, body: GridNodeIn, session: DbSession, ctx: Ctx,
             _actor: Annotated[Actor, Depends(require_roles("admin"))]) -> dict[str, object]:
    if body.parent is not None and (body.parent == code or session.get(GridNode, body.parent) is None):
        raise invalid(("body", "parent"), f"parent {body.parent!r} is not another grid node; name an existing one "
                                          "(GET /api/v1/grid) or none")
    row = session.get(GridNode, code) or GridNode(code=code)
    row.name, row.level, row.parent, row.workers = body.name, body.level, body.parent, list(body.workers)
    session.add(row)
    session.commit()
    # Routing and escalation follow the edit at once.
    ctx.workflow().grid = ctx.load_grid(session)
    return {"code": code, **body.model_dump()}


@router.get("/units", response_model=list[UnitOut], responses=responses(401, 403))
def units(actor: DeskActor, session: DbSession, ctx: Ctx) -> list[dict[str, object]]:
    """The units serving some part of the caller's scope (whom they may dispatch to)."""
    tree = ctx.load_grid(session)
    return [u.model_dump() for u in ctx.workflow().config.units if overlaps(actor, tree.subtree(u.grid))]


def _user_out(u: User) -> dict[str, object]:
    return {"username": u.username, "role": u.role, "worker": u.worker_id, "unit": u.unit, "grid": list(u.grid or []),
            "active": u.active, "managed_by": u.managed_by}


def _user_area(tree: GridTree, config: WorkflowConfig, user: User) -> frozenset[str] | None:
    """The grid a user works in (None: the whole site): their scope, and a unit user's served subtree."""
    area = scope_for(tree, user.role, user.grid or [], user.worker_id)
    unit = config.unit(user.unit) if user.role == "unit" and user.unit else None
    if area is not None and unit is not None:
        area |= tree.subtree(unit.grid)
    return area


@router.get("/users", response_model=list[UserOut], responses=responses(401, 403))
def users(session: DbSession, ctx: Ctx,
          actor: Annotated[Actor, Depends(require_roles("admin", "supervisor"))]) -> list[dict[str, object]]:
    """Everyone for site-wide callers; a supervisor of a subtree sees the users working in it."""
    tree, config = ctx.load_grid(session), ctx.workflow().config
    return [_user_out(u) for u in session.scalars(select(User).order_by(User.username))
            if overlaps(actor, _user_area(tree, config, u))]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    role: Role
    password: Password
    worker: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, max_length=64)
    grid: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Role | None = None
    password: Password | None = None
    worker: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, max_length=64)
    grid: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=100)
    active: bool | None = None


def _check_refs(session: Session, ctx: ApiContext, grid: list[str] | None, unit: str | None) -> None:
    tree = ctx.load_grid(session)
    for i, code in enumerate(grid or []):
        if code not in tree.nodes:
            raise invalid(("body", "grid", i), f"grid node {code!r} does not exist; name one from GET /api/v1/grid")
    if unit is not None and ctx.workflow().config.unit(unit) is None:
        raise invalid(("body", "unit"), f"unit {unit!r} is not configured; name one from GET /api/v1/units")


@router.post("/users", status_code=201, response_model=UserOut, responses=responses(401, 403, 409))
def add_user(body: UserIn, session: DbSession, ctx: Ctx,
             _actor: Annotated[Actor, Depends(require_roles("admin"))]) -> dict[str, object]:
    if session.scalar(select(User).where(User.username == body.username)) is not None:
        raise HTTPException(409, detail=f"user {body.username} exists; PATCH it")
    _check_refs(session, ctx, body.grid, body.unit)
    user = User(username=body.username, role=body.role, password_hash=hash_password(body.password),
                worker_id=body.worker, unit=body.unit, grid=list(body.grid), active=True, managed_by="api",
                token_version=0)
    session.add(user)
    session.commit()
    return _user_out(user)


@router.patch("/users/{username}", response_model=UserOut, responses=responses(401, 403, 404, 409))
def patch_user(username: Annotated[str, Path(max_length=64)], body: UserPatch, session: DbSession, ctx: Ctx,
               _actor: Annotated[Actor, Depends(require_roles("admin"))]) -> dict[str, object]:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise HTTPException(404, detail=f"no user {username}")
    if user.managed_by == "file":
        raise HTTPException(409, detail=f"user {username} is managed by the site file, which central re-applies at "
                                        "every start; change it there (and restart central) so the change lasts")
    _check_refs(session, ctx, body.grid, body.unit)
    fields = body.model_dump(exclude_unset=True)
    if "password" in fields and fields["password"]:
        user.password_hash = hash_password(fields.pop("password"))
        bump_token_version(user)
    fields.pop("password", None)
    if "worker" in fields:
        user.worker_id = fields.pop("worker")
        bump_token_version(user)
    for key, value in fields.items():
        if getattr(user, key) != value:
            bump_token_version(user)  # a new role, scope, unit or a disabling ends the old tokens
        setattr(user, key, value)
    session.commit()
    return _user_out(user)


@router.get("/sites", response_model=list[SiteOut], responses=responses(401, 403))
def sites(actor: DeskActor, session: DbSession, ctx: Ctx) -> list[dict[str, object]]:
    """Edges and cameras in the caller's scope (an edge shows when one of its cameras does)."""
    status_rows = {(r.site, r.edge): r for r in session.scalars(select(EdgeStatusRow))}
    health_rows = {(r.site, r.edge, r.camera): r for r in session.scalars(select(CameraHealthRow))}
    latest = dict(session.execute(
        select(Incident.camera, Incident.latest_snapshot_sha256)
        .where(Incident.latest_snapshot_sha256.is_not(None))
        .order_by(Incident.last_observed_at)).all())
    site = ctx.site
    if site is None:
        return []
    holds = actuations.newest_per_actuator(session, site.site)
    edges = []
    for edge in site.edges:
        st = status_rows.get((site.site, edge.id))
        cams = []
        for cam in edge.cameras:
            if not actor.in_scope(cam.grid_cell):
                continue
            h = health_rows.get((site.site, edge.id, cam.id))
            cams.append({"id": cam.id, "grid_cell": cam.grid_cell, "health": h.state if h else None,
                         "health_since": h.since if h else None, "cause": h.cause if h else None,
                         "zones": [z.model_dump(mode="json") for z in cam.zones],
                         "latest_snapshot_sha256": latest.get(cam.id)})
        if not cams and actor.scope is not None:
            continue
        edges.append({"id": edge.id, "state": st.state if st else None, "at": st.at if st else None,
                      "version": st.version if st else None, "problems": (st.problems or []) if st else [],
                      "cameras": cams, "actuators": [
                          {"id": a.id, "kind": a.kind, "name": a.name, "max_hold_s": a.max_hold_s,
                           **asdict(actuations.state_of(holds.get((edge.id, a.id))))}
                          for a in edge.actuators]})
    return [{"site": site.site, "name": site.name, "edges": edges}]


@router.get("/cameras/{camera}/snapshot", status_code=307, response_class=RedirectResponse, responses={
    307: {"description": "to the newest snapshot's evidence URL", "headers": {
        "Location": {"description": "/api/v1/evidence/{sha256}", "schema": {"type": "string"}}}},
    **responses(401, 403, 404)})
def camera_snapshot(camera: str, session: DbSession, ctx: Ctx, actor: DeskActor) -> RedirectResponse:
    """The camera's newest snapshot, for callers whose scope covers its grid cell (404 for others)."""
    latest = session.execute(select(Incident.latest_snapshot_sha256, Incident.grid_cell)
                             .where(Incident.camera == camera, Incident.latest_snapshot_sha256.is_not(None))
                             .order_by(Incident.last_observed_at.desc()).limit(1)).first()
    cell = ctx.camera_cell(camera) or (latest.grid_cell if latest is not None else None)
    missing = f"no snapshot of camera {camera} yet"
    if (latest is not None or cell is not None) and not actor.in_scope(cell):
        raise refusal(actor, f"camera {camera} is outside their grid", status.HTTP_404_NOT_FOUND, missing)
    if latest is None:
        raise HTTPException(404, detail=missing)
    return RedirectResponse(f"/api/v1/evidence/{latest.latest_snapshot_sha256}", status_code=307)


def _command_out(c: CommandRow) -> dict[str, object]:
    return {"command_id": c.command_id, "name": c.name, "edge": c.edge, "incident_id": c.incident_id,
            "sent_at": c.sent_at, "published": c.published, "status": c.status, "result": c.result,
            "errors": c.errors, "replied_at": c.replied_at}


def _command_in_scope(row: CommandRow, actor: Actor, session: Session, ctx: ApiContext) -> bool:
    """A recheck follows its incident's visibility; an edge command (config) is for desk roles
    whose scope takes in one of the edge's cameras."""
    if row.incident_id is not None:
        incident = session.get(Incident, row.incident_id)
        return incident is not None and can_see(actor, incident)
    edge = next((e for e in ctx.site.edges if e.id == row.edge), None) if ctx.site is not None else None
    cells = frozenset(c.grid_cell for c in edge.cameras if c.grid_cell) if edge is not None else frozenset()
    return actor.role in DESK_ROLES and overlaps(actor, cells)


@router.get("/commands/{command_id}", response_model=CommandOut, responses=responses(401, 404))
def get_command(command_id: str, session: DbSession, ctx: Ctx, actor: CurrentActor) -> dict[str, object]:
    row = session.get(CommandRow, command_id)
    missing = f"no command {command_id}"
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=missing)
    if not _command_in_scope(row, actor, session, ctx):
        raise refusal(actor, f"command {command_id} (edge {row.edge}) is outside their grid",
                      status.HTTP_404_NOT_FOUND, missing)
    return _command_out(row)
