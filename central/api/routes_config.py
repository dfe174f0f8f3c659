"""Edge configuration from central: a whole edge, one camera's zones, and the history of every
version sent, with restore. Guarded: a change that removes cameras or zones (an empty edge removes
them all) names them in ``confirm_removal``, or is refused with a 409 listing what it would take
away: open incidents, evidence under hold, PIPL register entries.

Every change is the edge's next version in the database, the one source of truth (central/fleet/
inventory.py); central's copy of the site (``ctx.site``) changes only after the new version and its
``config`` command are committed. ``apply_changes`` is the one way a change is made: these routes,
the model promotions and the inventory routes (routes_inventory.py) all go through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from broker.cameraconfig import EdgeConfig
from broker.siteconfig import SiteConfig
from central.api.deps import Ctx, DbSession, require_roles
from central.api.errors import invalid, invalid_all, problem, responses
from central.api.params import Version
from central.api.schemas_ops import CommandQueued
from central.fleet import config_history, inventory
from central.fleet.inventory_plan import duplicate_cameras, validate_edge
from central.store.config_tables import EdgeConfigChange
from central.store.tables import CommandRow
from central.workflow.rules import Actor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from central.api.context import ApiContext

router = APIRouter()
Admin = Annotated[Actor, Depends(require_roles("admin"))]

CONFIRM_HELP = ("the cameras and zones (camera/zone) this change removes, named to confirm it; required when it "
                "removes any, and exactly those")


class Guarded(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str | None = Field(None, max_length=500, description="why; kept in the configuration history")
    confirm_removal: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=500,
                                                                         description=CONFIRM_HELP)


class ConfigPush(Guarded):
    edge: dict[str, Any] = Field(description="the edge's whole configuration, as under edges: in the site file")


class ZonesPush(Guarded):
    zones: list[dict[str, Any]] = Field(max_length=100)


class RestoreIn(Guarded):
    pass


class ConfigVersionOut(BaseModel):
    version: int
    at: datetime
    actor: str
    action: str = Field(description="baseline (the site file's), push, zones, models or restore")
    reason: str | None
    summary: dict[str, list[str]] = Field(description="cameras and zones added, removed, changed against the version before")
    restored_from: int | None
    command_id: str | None
    hash: str


class ConfigVersionDetail(ConfigVersionOut):
    config: dict[str, Any]


class ConfigHistoryOut(BaseModel):
    edge: str
    versions: list[ConfigVersionOut]
    chain_ok: bool
    breaks: list[str]


class ConfigChanged(CommandQueued):
    version: int
    summary: dict[str, list[str]]


def _out(row: EdgeConfigChange) -> dict[str, Any]:
    return {"version": row.version, "at": row.at, "actor": row.actor, "action": row.action, "reason": row.reason,
            "summary": row.summary, "restored_from": row.restored_from, "command_id": row.command_id,
            "hash": row.hash}


def with_edge(site: SiteConfig, edge_id: str, change: Callable[[dict[str, Any]], None], source: str,
              key: str = "edge") -> SiteConfig:
    """SITE with one edge's data changed (a new edge when SITE has none of that id), validated like
    an entry of the site file's ``edges:`` and against the rest of the site (grid cells, camera ids
    unique across the site, URLs as ${VAR} references): 422 naming each bad key under KEY. Only the
    changed edge is validated again, so a change costs the same at 3 cameras and at 30,000."""
    current = next((e for e in site.edges if e.id == edge_id), None)
    data = current.model_dump(mode="json") if current is not None else {"id": edge_id}
    change(data)
    checked, problems = validate_edge(data, f"edges[{edge_id}]")
    if checked is not None:
        edge = EdgeConfig.model_validate(checked)
        cells = {g.code for g in site.grid}
        problems = [f"edges[{edge_id}].cameras[{i}].grid_cell: grid cell {c.grid_cell!r} is not in the grid "
                    "(fix: use a code of GET /api/v1/grid, or add the cell under grid: first)"
                    for i, c in enumerate(edge.cameras) if c.grid_cell is not None and c.grid_cell not in cells]
        others = {e.id: e.model_dump(mode="json", include={"cameras": {"__all__": {"id"}}})
                  for e in site.edges if e.id != edge_id}
        problems += duplicate_cameras({**others, edge_id: checked})
    if problems:
        raise invalid_all(problem(("body", key), f"{source}: {p}", "config_invalid") for p in problems)
    edges = [edge if e.id == edge_id else e for e in site.edges] if current is not None else [*site.edges, edge]
    return site.model_copy(update={"edges": edges})


def _guard(session: Session, ctx: ApiContext, summary: dict[str, list[str]], confirm: list[str]) -> None:
    """409 unless CONFIRM names exactly what the change removes against the configuration now
    (a state the caller may not have seen: the answer lists it, and what it would take away)."""
    removed = config_history.removals(summary)
    if sorted(set(confirm)) == removed:
        return
    assert ctx.site is not None
    raise HTTPException(status.HTTP_409_CONFLICT, detail={
        "error": ("this change removes cameras or zones: send it again with confirm_removal naming exactly them"
                  if removed else "this change removes nothing: send it without confirm_removal"),
        "confirm_removal": removed,
        "missing": [name for name in removed if name not in confirm],
        "unexpected": [name for name in confirm if name not in removed],
        "affected": config_history.affected(session, ctx.site, ctx.workflow().config.retention, removed)})


@dataclass(frozen=True)
class EdgeChange:
    """One edge's part of a change: its next configuration (None: the edge is retired)."""

    edge: str
    config: EdgeConfig | None


def apply_changes(session: Session, ctx: ApiContext, site: SiteConfig, changes: list[EdgeChange], actor: Actor, *,
                  action: str, reason: str | None = None, confirm: list[str] | None = None,
                  restored_from: int | None = None) -> list[tuple[CommandRow, EdgeConfigChange]]:
    """Store each edge's next version with its index rows and the ``config`` command carrying that
    edge's own configuration (camera credentials as ${VAR} references, broker.edgeconfig), in one
    transaction; then adopt SITE as central's copy and send the commands (this process, once). A
    removal must be confirmed (CONFIRM) first; a camera moving to another edge of the same change is
    no removal. 409 when another change of one of the edges was stored since this copy was read."""
    assert ctx.site is not None
    running = {c.edge: ctx.site.edge(c.edge).model_dump(mode="json") if any(e.id == c.edge for e in ctx.site.edges)
               else None for c in changes}
    kept = {cam.id for c in changes if c.config is not None for cam in c.config.cameras}
    summary: dict[str, list[str]] = {"cameras_removed": [], "zones_removed": []}
    for c in changes:
        wanted = c.config.model_dump(mode="json") if c.config is not None else {"cameras": []}
        step = config_history.diff(running[c.edge], wanted)
        summary["cameras_removed"] += [cam for cam in step["cameras_removed"] if cam not in kept]
        summary["zones_removed"] += step["zones_removed"]
    _guard(session, ctx, summary, confirm or [])
    now = ctx.workflow().clock.now()
    done: list[tuple[CommandRow, EdgeConfigChange]] = []
    try:
        for c in changes:
            if ctx.inventory is not None and not inventory.is_current(session, site.site, c.edge,
                                                                      ctx.inventory.change_id(c.edge)):
                raise _stale(c.edge)
            change, command = inventory.store_version(session, site.site, c.config, edge_id=c.edge,
                                                      actor=actor.username, action=action, at=now, reason=reason,
                                                      restored_from=restored_from)
            assert command is not None
            done.append((command, change))
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _stale(", ".join(c.edge for c in changes)) from None
    except HTTPException:
        session.rollback()
        raise
    # Only now: what central shows is what it stored and sent.
    if ctx.inventory is not None:
        ctx.inventory.adopt(site, {c.edge: (ch.id if c.config is not None else None)
                                   for c, (_, ch) in zip(changes, done, strict=True)})
    ctx.site = site
    ctx.changed()
    return done


def _stale(edge: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=f"another change of edge {edge} was stored meanwhile; "
                                                          "read it (its configuration history) and try again")


def send_edge_config(session: Session, ctx: ApiContext, site: SiteConfig, edge_id: str, actor: Actor, *,
                     action: str, reason: str | None = None, confirm: list[str] | None = None,
                     restored_from: int | None = None) -> tuple[CommandRow, EdgeConfigChange]:
    """apply_changes for one edge of SITE."""
    return apply_changes(session, ctx, site, [EdgeChange(edge_id, site.edge(edge_id))], actor, action=action,
                         reason=reason, confirm=confirm, restored_from=restored_from)[0]


def _edge_or_404(ctx: ApiContext, edge: str) -> SiteConfig:
    if ctx.site is None or all(e.id != edge for e in ctx.site.edges):
        raise HTTPException(404, detail=f"edge {edge} is not in this site's configuration")
    return ctx.site


GUARDED = responses(401, 403, 404, 409)


@router.post("/edges/{edge}/config", status_code=202, response_model=ConfigChanged, responses=GUARDED)
def push_config(edge: str, body: ConfigPush, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Replace one edge's configuration (cameras, zones, settings) and send it to that edge."""
    site = _edge_or_404(ctx, edge)
    if body.edge.get("id", edge) != edge:
        raise invalid(("body", "edge", "id"), f"{body.edge.get('id')!r} is not {edge!r}; push it to its own edge")

    def replace(edge_data: dict[str, Any]) -> None:
        edge_data.clear()
        edge_data.update({**body.edge, "id": edge})

    site = with_edge(site, edge, replace, f"configuration of edge {edge}")
    command, change = send_edge_config(session, ctx, site, edge, actor, action="push", reason=body.reason,
                                       confirm=body.confirm_removal)
    return {"command_id": command.command_id, "edge": edge, "version": change.version, "summary": change.summary}


@router.put("/cameras/{camera}/zones", status_code=202, response_model=ConfigChanged, responses=GUARDED)
def push_zones(camera: str, body: ZonesPush, session: DbSession, ctx: Ctx, actor: Admin) -> dict[str, object]:
    """Replace one camera's zones: validated like the site file, stored as the edge's next
    configuration version and sent to the camera's edge as a ``config`` command carrying that
    edge's own configuration only (its reply: GET /commands/{id}). Stored, so a restart keeps them."""
    site = ctx.site
    found = site.camera(camera) if site is not None else None
    if site is None or found is None:
        raise HTTPException(404, detail=f"camera {camera} is not in this site's configuration")
    edge, _ = found

    def set_zones(edge_data: dict[str, Any]) -> None:
        for camera_data in edge_data["cameras"]:
            if camera_data["id"] == camera:
                camera_data["zones"] = body.zones

    site = with_edge(site, edge.id, set_zones, f"zones of camera {camera}", key="zones")
    command, change = send_edge_config(session, ctx, site, edge.id, actor, action="zones", reason=body.reason,
                                       confirm=body.confirm_removal)
    return {"command_id": command.command_id, "edge": edge.id, "version": change.version, "summary": change.summary}


def _known_edge(ctx: ApiContext, session: Session, edge: str) -> list[EdgeConfigChange]:
    rows = config_history.history(session, ctx.site.site, edge) if ctx.site is not None else []
    if not rows and (ctx.site is None or all(e.id != edge for e in ctx.site.edges)):
        raise HTTPException(404, detail=f"edge {edge} is not in this site's configuration")
    return rows


@router.get("/edges/{edge}/config/versions", response_model=ConfigHistoryOut, responses=responses(401, 403, 404))
def config_versions(edge: str, session: DbSession, ctx: Ctx, _actor: Admin) -> dict[str, object]:
    """Every configuration version of the edge sent from central, oldest first, and whether their
    hash chain holds (an edited, deleted or reordered version breaks it)."""
    rows = _known_edge(ctx, session, edge)
    breaks = config_history.verify(rows)
    return {"edge": edge, "versions": [_out(r) for r in rows], "chain_ok": not breaks, "breaks": breaks}


def _version(ctx: ApiContext, session: Session, edge: str, version: int) -> EdgeConfigChange:
    row = next((r for r in _known_edge(ctx, session, edge) if r.version == version), None)
    if row is None:
        raise HTTPException(404, detail=f"edge {edge} has no configuration version {version}")
    return row


@router.get("/edges/{edge}/config/versions/{version}", response_model=ConfigVersionDetail,
            responses=responses(401, 403, 404))
def config_version(edge: str, version: Version, session: DbSession, ctx: Ctx, _actor: Admin) -> dict[str, object]:
    row = _version(ctx, session, edge, version)
    return {**_out(row), "config": row.config}


@router.post("/edges/{edge}/config/versions/{version}/restore", status_code=202, response_model=ConfigChanged,
             responses=GUARDED)
def restore_config(edge: str, version: Version, body: RestoreIn, session: DbSession, ctx: Ctx,
                   actor: Admin) -> dict[str, object]:
    """Send an earlier version again, as a new version (guarded like any change: what it removes
    against the configuration now must be confirmed)."""
    row = _version(ctx, session, edge, version)
    site = _edge_or_404(ctx, edge)

    def restore(edge_data: dict[str, Any]) -> None:
        edge_data.clear()
        edge_data.update(row.config)

    site = with_edge(site, edge, restore, f"version {version} of edge {edge}")
    command, change = send_edge_config(session, ctx, site, edge, actor, action="restore", reason=body.reason,
                                       confirm=body.confirm_removal, restored_from=version)
    return {"command_id": command.command_id, "edge": edge, "version": change.version, "summary": change.summary}
