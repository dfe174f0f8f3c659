"""The inventory from the console: a searchable, paged camera list that stays one indexed query at
30,000 cameras, and adding, editing, moving and retiring cameras and edges. Every change is a new
version of each edge it touches, stored and sent through routes_config.apply_changes (guarded like
any removal); a retired camera keeps its incidents and evidence and stays listed with retired=true."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select

from central.api.deps import Ctx, DbSession, DeskActor, refusal, require_roles
from central.api.errors import invalid, responses, shadowed
from central.api.params import Offset
from central.api.routes_config import CONFIRM_HELP, GUARDED, EdgeChange, apply_changes, with_edge
from central.store.inventory_tables import InventoryCamera, InventoryEdge
from central.workflow.rules import Actor

if TYPE_CHECKING:
    from broker.siteconfig import SiteConfig
    from central.api.context import ApiContext

router = APIRouter()
Admin = Annotated[Actor, Depends(require_roles("admin"))]
Reason = Annotated[str | None, Field(None, max_length=500, description="why; kept in the configuration history")]
Confirm = Annotated[list[Annotated[str, Field(max_length=200)]], Field(default_factory=list, max_length=500,
                                                                       description=CONFIRM_HELP)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CameraIn(Body):
    edge: str = Field(max_length=64, description="the edge that runs it")
    camera: dict[str, Any] = Field(description="the camera's configuration, as under cameras: in the site file")
    reason: Reason = None


class CameraPatch(Body):
    camera: dict[str, Any] = Field(description="the keys to change (id excepted), as under cameras: in the site file")
    reason: Reason = None
    confirm_removal: Confirm


class MoveIn(Body):
    edge: str | None = Field(None, max_length=64, description="another edge to run the camera")
    grid_cell: str | None = Field(None, max_length=64, description="another grid cell")
    reason: Reason = None


class RetireIn(Body):
    reason: Reason = None
    confirm_removal: Confirm


class EdgeIn(Body):
    edge: dict[str, Any] = Field(description="the edge's configuration, as under edges: in the site file")
    reason: Reason = None


class EdgePatch(Body):
    edge: dict[str, Any] = Field(description="the keys to change (id excepted); cameras, when given, replace them all")
    reason: Reason = None
    confirm_removal: Confirm


class Queued(BaseModel):
    command_id: str
    edge: str
    version: int


class Changed(Queued):
    also: list[Queued] = Field(default_factory=list, description="the other edge's version of a move")


class CameraOut(BaseModel):
    id: str
    name: str | None
    site: str
    edge: str
    channel_id: str | None
    grid_cell: str | None
    url: str = Field(description="as stored: ${VAR} references, never credentials")
    lon: float | None
    lat: float | None
    model: str
    zones: int
    retired_at: datetime | None


class CameraList(BaseModel):
    total: int
    items: list[CameraOut]


class InventoryOut(BaseModel):
    site: str
    edges: int
    cameras: int
    retired_cameras: int
    retired_edges: list[str]
    file_differences: list[dict[str, Any]] = Field(
        description="edges the site file describes otherwise than the database, which wins: each with what applying "
                    "the file would change (sharpeyes central inventory import FILE)")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/cameras", response_model=CameraList, responses=responses(401, 403))
def list_cameras(actor: DeskActor, session: DbSession, ctx: Ctx,
                 q: Annotated[str | None, Query(max_length=100, description="part of the id or name, or the start of "
                                                "the channel id")] = None,
                 edge: Annotated[str | None, Query(max_length=64)] = None,
                 grid: Annotated[str | None, Query(max_length=64, description="a grid cell's code")] = None,
                 retired: Annotated[bool, Query(description="true: only retired cameras")] = False,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0) -> dict[str, object]:
    """The cameras in the caller's scope, by id: searched and filtered in the database's index."""
    site = ctx.site.site if ctx.site is not None else ""
    terms = [InventoryCamera.site == site,
             InventoryCamera.retired_at.is_not(None) if retired else InventoryCamera.retired_at.is_(None)]
    if actor.scope is not None:
        terms.append(InventoryCamera.grid_cell.in_(sorted(actor.scope)))
    if q:
        pattern = _like(q)
        terms.append(or_(InventoryCamera.id.like(f"%{pattern.lower()}%", escape="\\"),
                         InventoryCamera.name.like(f"%{pattern}%", escape="\\"),
                         InventoryCamera.channel_id.like(f"{pattern}%", escape="\\")))
    if edge:
        terms.append(InventoryCamera.edge == edge)
    if grid:
        terms.append(InventoryCamera.grid_cell == grid)
    total = session.scalar(select(func.count()).select_from(InventoryCamera).where(*terms)) or 0
    rows = session.scalars(select(InventoryCamera).where(*terms).order_by(InventoryCamera.id).limit(limit).offset(offset))
    return {"total": total, "items": [{c: getattr(r, c) for c in CameraOut.model_fields} for r in rows]}


@router.get("/inventory", response_model=InventoryOut, responses=responses(401, 403))
def inventory_status(session: DbSession, ctx: Ctx, _actor: Admin) -> dict[str, object]:
    """How much is on record, and where the site file disagrees with the database (shown, never applied)."""
    site = ctx.site.site if ctx.site is not None else ""
    counts = dict(session.execute(select(InventoryCamera.retired_at.is_(None), func.count())
                                  .where(InventoryCamera.site == site).group_by(InventoryCamera.retired_at.is_(None))).all())
    retired = session.scalars(select(InventoryEdge.id).where(InventoryEdge.site == site,
                                                             InventoryEdge.retired_at.is_not(None)).order_by(InventoryEdge.id))
    return {"site": site, "edges": len(ctx.site.edges) if ctx.site else 0, "cameras": counts.get(True, 0),
            "retired_cameras": counts.get(False, 0), "retired_edges": list(retired),
            "file_differences": ctx.inventory.file_differences if ctx.inventory is not None else []}


def _camera(ctx: ApiContext, actor: Actor, camera: str) -> tuple[SiteConfig, str, dict[str, Any]]:
    """(site, edge id, the camera's configuration) of an active camera in the caller's scope (404 alike otherwise)."""
    site = ctx.site
    found = site.camera(camera) if site is not None else None
    missing = f"camera {camera} is not in this site's configuration"
    if site is None or found is None:
        raise HTTPException(404, detail=missing)
    if not actor.in_scope(found[1].grid_cell):
        raise refusal(actor, f"camera {camera} is outside their grid", status.HTTP_404_NOT_FOUND, missing)
    return site, found[0].id, found[1].model_dump(mode="json")


def _edge(ctx: ApiContext, edge: str) -> SiteConfig:
    if ctx.site is None or all(e.id != edge for e in ctx.site.edges):
        raise HTTPException(404, detail=f"edge {edge} is not in this site's configuration")
    return ctx.site


def _answer(done: list[tuple[Any, Any]], edge: str) -> dict[str, object]:
    out = [{"command_id": c.command_id, "edge": v.edge, "version": v.version} for c, v in done]
    main = next(o for o in out if o["edge"] == edge)
    return {**main, "also": [o for o in out if o is not main]}


def _replace_camera(camera_id: str, data: dict[str, Any] | None) -> Any:
    def change(edge_data: dict[str, Any]) -> None:
        cams = [c for c in edge_data.get("cameras", []) if c["id"] != camera_id]
        if data is not None:
            index = next((i for i, c in enumerate(edge_data.get("cameras", [])) if c["id"] == camera_id), len(cams))
            cams.insert(index, data)
        edge_data["cameras"] = cams
    return change


def _in_scope_cell(actor: Actor, cell: Any) -> None:
    if not actor.in_scope(cell if isinstance(cell, str) else None):
        raise refusal(actor, f"grid cell {cell} is outside their grid", detail="the camera's grid cell is outside "
                      "your grid scope; an admin of the whole site can place it there")


@router.post("/cameras", status_code=202, response_model=Changed, responses=responses(401, 403, 404, 409))
def add_camera(body: CameraIn, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Add a camera to an edge: validated like the site file, stored as the edge's next version and
    sent to it (the edge starts the camera without a restart)."""
    if ctx.site is None or all(e.id != body.edge for e in ctx.site.edges):
        raise invalid(("body", "edge"), f"edge {body.edge!r} is not an edge of this site (fix: add it with POST "
                                        "/api/v1/edges, or name one of GET /api/v1/sites)")
    camera_id = body.camera.get("id")
    if isinstance(camera_id, str) and ctx.site.camera(camera_id) is not None:
        raise HTTPException(409, detail=f"camera {camera_id} is already on edge {ctx.site.camera(camera_id)[0].id}; "  # type: ignore[index]
                                        "edit it (PATCH) or move it")
    _in_scope_cell(actor, body.camera.get("grid_cell"))
    site = with_edge(ctx.site, body.edge, _replace_camera(str(camera_id), body.camera), f"camera of edge {body.edge}",
                     key="camera")
    done = apply_changes(session, ctx, site, [EdgeChange(body.edge, site.edge(body.edge))], actor,
                         action="camera_add", reason=body.reason)
    return _answer(done, body.edge)


@router.patch("/cameras/{camera}", status_code=202, response_model=Changed, responses=GUARDED)
def edit_camera(camera: str, body: CameraPatch, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Change some of a camera's keys (name, URL reference, zones, model, ...); removing zones is guarded."""
    site, edge, data = _camera(ctx, actor, camera)
    if body.camera.get("id", camera) != camera:
        raise invalid(("body", "camera", "id"), "a camera's id does not change (fix: retire it and add a new one)")
    if "grid_cell" in body.camera:
        _in_scope_cell(actor, body.camera["grid_cell"])
    site = with_edge(site, edge, _replace_camera(camera, {**data, **body.camera, "id": camera}),
                     f"camera {camera}", key="camera")
    done = apply_changes(session, ctx, site, [EdgeChange(edge, site.edge(edge))], actor, action="camera_edit",
                         reason=body.reason, confirm=body.confirm_removal)
    return _answer(done, edge)


@router.post("/cameras/{camera}/move", status_code=202, response_model=Changed, responses=GUARDED)
def move_camera(camera: str, body: MoveIn, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Run the camera on another edge (a version of each edge: it leaves one and joins the other with
    its zones), or map it to another grid cell (a version of its edge), or both."""
    site, edge, data = _camera(ctx, actor, camera)
    if body.edge is None and body.grid_cell is None:
        raise invalid(("body", "edge"), "name the edge or the grid cell to move the camera to (or both)")
    if body.grid_cell is not None:
        _in_scope_cell(actor, body.grid_cell)
        data = {**data, "grid_cell": body.grid_cell}
    target = body.edge or edge
    if target != edge:
        if all(e.id != target for e in site.edges):
            raise invalid(("body", "edge"), f"edge {target!r} is not an edge of this site (fix: name one of GET "
                                            "/api/v1/sites)")
        site = with_edge(site, edge, _replace_camera(camera, None), f"edge {edge}", key="edge")
    site = with_edge(site, target, _replace_camera(camera, data), f"camera {camera} on edge {target}", key="camera")
    changes = [EdgeChange(target, site.edge(target))] + ([EdgeChange(edge, site.edge(edge))] if target != edge else [])
    done = apply_changes(session, ctx, site, changes, actor, action="camera_move", reason=body.reason)
    return _answer(done, target)


@router.post("/cameras/{camera}/retire", status_code=202, response_model=Changed, responses=GUARDED)
def retire_camera(camera: str, body: RetireIn, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Take the camera off its edge; its incidents and evidence stay, and the list keeps it with
    retired=true. Guarded: confirm_removal must name it (409 listing what it affects otherwise)."""
    site, edge, _ = _camera(ctx, actor, camera)
    site = with_edge(site, edge, _replace_camera(camera, None), f"edge {edge}", key="edge")
    done = apply_changes(session, ctx, site, [EdgeChange(edge, site.edge(edge))], actor, action="camera_retire",
                         reason=body.reason, confirm=body.confirm_removal)
    return _answer(done, edge)


@router.post("/edges", status_code=202, response_model=Changed, responses=responses(401, 403, 409))
def add_edge(body: EdgeIn, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Add an edge (or bring a retired one back) with its cameras, validated like the site file."""
    edge_id = body.edge.get("id")
    if not isinstance(edge_id, str):
        raise invalid(("body", "edge", "id"), "the edge needs an id (lower-case letters, digits and '-')")
    if ctx.site is not None and any(e.id == edge_id for e in ctx.site.edges):
        raise HTTPException(409, detail=f"edge {edge_id} exists; change it with PATCH /api/v1/edges/{edge_id}")
    for camera in body.edge.get("cameras") or []:
        if isinstance(camera, dict):
            _in_scope_cell(actor, camera.get("grid_cell"))
    assert ctx.site is not None

    def replace(edge_data: dict[str, Any]) -> None:
        edge_data.clear()
        edge_data.update(body.edge)

    site = with_edge(ctx.site, edge_id, replace, f"edge {edge_id}")
    done = apply_changes(session, ctx, site, [EdgeChange(edge_id, site.edge(edge_id))], actor, action="edge_add",
                         reason=body.reason)
    return _answer(done, edge_id)


@router.patch("/edges/{edge}", status_code=202, response_model=Changed, responses=GUARDED)
def edit_edge(edge: str, body: EdgePatch, session: DbSession, ctx: Ctx, actor: Admin,
              request: Request) -> dict[str, object]:
    """Change some of an edge's keys (settings, actuators; cameras replace them all, guarded)."""
    if (wrong := shadowed(request.app, request)) is not None:
        raise wrong  # e.g. PATCH /edges/drift: that path is another route's, which takes no PATCH
    site = _edge(ctx, edge)
    if body.edge.get("id", edge) != edge:
        raise invalid(("body", "edge", "id"), "an edge's id does not change (fix: add a new edge and move the cameras)")
    site = with_edge(site, edge, lambda data: data.update({**body.edge, "id": edge}), f"edge {edge}")
    done = apply_changes(session, ctx, site, [EdgeChange(edge, site.edge(edge))], actor, action="edge_edit",
                         reason=body.reason, confirm=body.confirm_removal)
    return _answer(done, edge)


@router.post("/edges/{edge}/retire", status_code=202, response_model=Changed, responses=GUARDED)
def retire_edge(edge: str, body: RetireIn, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Retire an edge: its last version carries no cameras, so it stops them; its cameras are retired
    with it (their incidents and evidence stay). Guarded: confirm_removal names every camera it runs."""
    site = _edge(ctx, edge)
    remaining = site.model_copy(update={"edges": [e for e in site.edges if e.id != edge]})
    done = apply_changes(session, ctx, remaining, [EdgeChange(edge, None)], actor, action="edge_retire",
                         reason=body.reason, confirm=body.confirm_removal)
    return _answer(done, edge)
