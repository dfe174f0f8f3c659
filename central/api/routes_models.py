"""Which detector each camera runs: promotion of a trained model through the gate, and rollback.

A promotion is judged by models/promotion.py (held-out e-bike recall, false boxes, vehicle
agreement against the model the camera runs now); when it passes, central's copy of the site
configuration gets the new ``model:`` for the cameras named and each of their edges gets its
configuration pushed (the ``config`` command: the edge loads the model, and refuses a model it
cannot load, keeping the old one). Every change is a ``model_changes`` row: the newest one per
camera is what a rollback undoes. Like zones pushed from the console, the change lives in
central's copy of the site configuration: copy the ``model:`` into the site file to keep it
across a restart (docs/models.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.cameraconfig import CameraConfig
from broker.siteconfig import SiteConfig
from central.api.deps import DESK_ROLES, Ctx, DbSession, require_roles
from central.api.errors import invalid, responses
from central.api.routes_config import send_edge_config, with_edge
from central.fleet.model_artifacts import register_artifacts
from central.store.learning_tables import ModelChange
from central.store.tables import Incident
from central.workflow.rules import Actor

router = APIRouter()
Admin = Annotated[Actor, Depends(require_roles("admin"))]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    camera: str | None = Field(None, max_length=64, description="one camera (or zone_kind)")
    zone_kind: Literal["fire_lane", "indoor", "occupancy"] | None = Field(
        None, description="every camera with a zone of this kind")
    reason: str | None = Field(None, max_length=500)


class PromoteIn(Target):
    model: str = Field(max_length=100, description="a registered model trained here (sharpeyes models train)")


class ModelChangeOut(BaseModel):
    at: str
    actor: str
    camera: str
    edge: str
    action: str
    from_model: str
    to_model: str
    to_sha256: str
    reason: str | None
    command_id: str | None


class ModelChangesOut(BaseModel):
    changes: list[ModelChangeOut]
    gate: list[dict[str, Any]] = Field(default_factory=list, description="the verdict per model replaced")


class CameraModelOut(BaseModel):
    camera: str
    edge: str
    model: str
    zone_kinds: list[str]
    history: list[ModelChangeOut]


class RegisteredModelOut(BaseModel):
    name: str
    sha256: str
    trained: bool
    base: str | None
    held_out_ebike_recall: float | None
    false_boxes_per_image: float | None
    vehicle_agreement: float | None


class ModelsOut(BaseModel):
    models: list[RegisteredModelOut]
    cameras: list[CameraModelOut]


def _out(row: ModelChange) -> ModelChangeOut:
    return ModelChangeOut(at=row.at.isoformat(), actor=row.actor, camera=row.camera, edge=row.edge, action=row.action,
                          from_model=row.from_model, to_model=row.to_model, to_sha256=row.to_sha256, reason=row.reason,
                          command_id=row.command_id)


def _targets(site: SiteConfig | None, body: Target) -> list[tuple[str, CameraConfig]]:
    """(edge id, camera) for each camera the request names; 404/422 when it names none."""
    if (body.camera is None) == (body.zone_kind is None):
        raise invalid(("body", "camera"), "name either camera or zone_kind, not both and not neither")
    found = [(edge.id, camera) for edge in (site.edges if site else []) for camera in edge.cameras
             if camera.id == body.camera or any(z.kind == body.zone_kind for z in camera.zones)]
    if not found:
        what = f"camera {body.camera}" if body.camera else f"a camera with a {body.zone_kind} zone"
        raise HTTPException(404, detail=f"{what} is not in this site's configuration")
    return found


def _apply(session: DbSession, ctx: Ctx, actor: Actor, plan: list[tuple[str, CameraConfig, str]], action: str,
           reason: str | None, gate: dict[str, dict[str, Any]]) -> list[ModelChangeOut]:
    """Set each camera's model (edge, camera, new model), push each edge's configuration once."""
    from models.registry import resolve_model

    assert ctx.site is not None
    site = ctx.site
    now = ctx.workflow().clock.now()
    rows = []
    for edge_id in dict.fromkeys(e for e, _, _ in plan):
        mine = {camera.id: model for e, camera, model in plan if e == edge_id}

        def set_models(edge_data: dict[str, Any], mine: dict[str, str] = mine) -> None:
            for camera_data in edge_data["cameras"]:
                if camera_data["id"] in mine:
                    camera_data["model"] = mine[camera_data["id"]]

        site = with_edge(site, edge_id, set_models, f"models of edge {edge_id}")
        edge_rows = [ModelChange(at=now, actor=actor.username, site=site.site, edge=edge_id, camera=camera.id,
                                 action=action, from_model=camera.model, to_model=model,
                                 to_sha256=resolve_model(model).entry.sha256, reason=reason,
                                 gate=gate.get(camera.model))
                     for e, camera, model in plan if e == edge_id]
        session.add_all(edge_rows)
        # The files go to central's store now, so that any replica serves them to the edge (edge/model_fetch.py).
        register_artifacts(session, ctx.evidence, {model for _, _, model in plan}, actor=actor.username, at=now)
        # Commits the rows with the configuration version (a model change removes nothing).
        command, _ = send_edge_config(session, ctx, site, edge_id, actor, action="models", reason=reason)
        for row in edge_rows:
            row.command_id = command.command_id
        session.commit()
        rows += edge_rows
    return [_out(r) for r in rows]


@router.post("/models/promote", response_model=ModelChangesOut, responses=responses(401, 403, 404, 409))
def promote(body: PromoteIn, session: DbSession, ctx: Ctx, actor: Admin) -> ModelChangesOut:
    """Put a trained model on a camera (or every camera with a zone of a kind) if the gate passes
    (vehicle agreement counts where one of the cameras watches a fire lane); 409 naming each
    figure that failed otherwise. The gate only reads the figures stored with the model (no detector
    runs in this request): 409 naming `sharpeyes models gate MODEL --against CURRENT` where a current
    model's are missing."""
    from models.promotion import GateUnavailable, judge
    from models.registry import ChecksumMismatch, ModelNotFound, resolve_model

    targets = [(e, c) for e, c in _targets(ctx.site, body) if c.model != body.model]
    if not targets:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{body.model} is already the model there")
    try:
        resolve_model(body.model)
        fire_lanes = any(z.kind == "fire_lane" for _, c in targets for z in c.zones)
        verdicts = {current: judge(body.model, current, fire_lanes=fire_lanes)
                    for current in sorted({c.model for _, c in targets})}
    except (GateUnavailable, ModelNotFound, ChecksumMismatch) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    failures = [f"against {current}: {failure}" for current, v in verdicts.items() for failure in v.failures]
    gate = {current: v.to_json() for current, v in verdicts.items()}
    if failures:
        raise HTTPException(status.HTTP_409_CONFLICT, detail={"failures": failures, "gate": list(gate.values())})
    changes = _apply(session, ctx, actor, [(e, c, body.model) for e, c in targets], "promote", body.reason, gate)
    return ModelChangesOut(changes=changes, gate=list(gate.values()))


@router.post("/models/rollback", response_model=ModelChangesOut, responses=responses(401, 403, 404, 409))
def rollback(body: Target, session: DbSession, ctx: Ctx, actor: Admin) -> ModelChangesOut:
    """Give each camera named back the model it ran before its latest change (no gate: it ran it)."""
    plan = []
    for edge_id, camera in _targets(ctx.site, body):
        latest = session.scalars(select(ModelChange).where(ModelChange.camera == camera.id)
                                 .order_by(ModelChange.at.desc(), ModelChange.id.desc()).limit(1)).first()
        if latest is not None and latest.to_model == camera.model:
            plan.append((edge_id, camera, latest.from_model))
    if not plan:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="no model change to roll back there")
    from models.registry import ChecksumMismatch, ModelNotFound, resolve_model

    try:
        for _, _, previous in plan:
            resolve_model(previous)
    except (ModelNotFound, ChecksumMismatch) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"the previous model cannot be loaded: {exc}") from None
    return ModelChangesOut(changes=_apply(session, ctx, actor, plan, "rollback", body.reason, {}))


@router.get("/models", response_model=ModelsOut, responses=responses(401, 403))
def list_models(session: DbSession, ctx: Ctx, actor: Admin) -> ModelsOut:
    """The registered models (with their held-out figures) and the model of every camera, with its history."""
    from models.promotion import figures_of
    from models.registry import load_registry

    models = []
    for entry in load_registry().models:
        record = entry.trained or {}
        figures = figures_of(record["figures"]) if "figures" in record else None
        models.append(RegisteredModelOut(
            name=entry.name, sha256=entry.sha256, trained=entry.trained is not None, base=record.get("base"),
            held_out_ebike_recall=figures.ebike_recall if figures else None,
            false_boxes_per_image=figures.false_boxes_per_image if figures else None,
            vehicle_agreement=figures.vehicle_agreement if figures else None))
    history: dict[str, list[ModelChangeOut]] = {}
    for row in session.scalars(select(ModelChange).order_by(ModelChange.at.desc(), ModelChange.id.desc())):
        history.setdefault(row.camera, []).append(_out(row))
    cameras = [CameraModelOut(camera=c.id, edge=e.id, model=c.model, zone_kinds=sorted({z.kind for z in c.zones}),
                              history=history.get(c.id, []))
               for e in (ctx.site.edges if ctx.site else []) for c in e.cameras]
    return ModelsOut(models=models, cameras=cameras)


class ModelReviewsOut(BaseModel):
    model: str | None = Field(description="the model that raised the incidents (None: events without a model)")
    reviewed: int
    confirmed: int
    dismissed: int
    false_alarm_rate: float | None = Field(description="dismissed / (confirmed + dismissed)")


@router.get("/stats/models", response_model=list[ModelReviewsOut], responses=responses(401, 403))
def false_alarms_by_model(ctx: Ctx, response: Response, actor: Annotated[Actor, Depends(require_roles(*DESK_ROLES))]
                          ) -> list[ModelReviewsOut]:
    """Per detector model, what the monitors' reviews said of the incidents it raised (the latest label
    of each incident the asker may see): how often a promoted model cries wolf. Read from the replica
    when there is one (the X-Sharpeyes-Read-* headers say where, as for /stats)."""
    from central.api.routes_incidents import visible
    from central.learning.review_labels import current_labels

    def count(read: Session) -> dict[str | None, list[int]]:
        seen = set(read.scalars(visible(select(Incident.id), actor)))
        counts: dict[str | None, list[int]] = {}
        for row in current_labels(read, verdicts_only=True):
            if row.incident_id not in seen:
                continue
            entry = counts.setdefault(row.model, [0, 0, 0])
            entry[0] += 1
            entry[1] += row.verdict == "confirmed"
            entry[2] += row.verdict == "dismissed"
        return counts

    counts, freshness = ctx.read_router().read(count)
    response.headers.update(freshness.headers())
    return [ModelReviewsOut(model=model, reviewed=n, confirmed=c, dismissed=d,
                            false_alarm_rate=round(d / (c + d), 3) if c + d else None)
            for model, (n, c, d) in sorted(counts.items(), key=lambda kv: str(kv[0]))]
