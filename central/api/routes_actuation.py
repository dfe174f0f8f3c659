"""Releasing a door hold by hand: from the incident (its monitor, supervisor or the property unit it
is assigned to) or from the edge's page (desk roles), over the existing command path (``release``
to the edge, its reply at GET /commands/{id}). The edge records the release as an actuation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from central.api.deps import DESK_ROLES, Ctx, CurrentActor, DbSession, overlaps, refusal, require_roles
from central.api.errors import responses
from central.api.params import IncidentId
from central.api.routes_incidents import _load_visible, may_release
from central.api.schemas import ReleaseIn, ReleaseOut
from central.fleet import actuations
from central.store.tables import CommandRow
from central.workflow import audit
from central.workflow.rules import Actor

router = APIRouter()


def _release_command(session: DbSession, ctx: Ctx, site: str, edge: str, args: dict[str, str], actor: Actor,
                     incident_id: int | None = None) -> CommandRow:
    row = CommandRow(command_id=str(uuid.uuid4()), site=site, edge=edge, name="release", args=args,
                     incident_id=incident_id, actor=actor.username, sent_at=ctx.workflow().clock.now(),
                     status="pending", published=False)
    session.add(row)
    return row


@router.post("/incidents/{incident_id}/release-hold", status_code=202, response_model=ReleaseOut,
             responses=responses(401, 403, 404, 409))
def release_incident_hold(incident_id: IncidentId, body: ReleaseIn, actor: CurrentActor, session: DbSession,
                          ctx: Ctx) -> ReleaseOut:
    """Tell the incident's edge to let go of the holds its zone keeps (a false door hold)."""
    incident = _load_visible(session, incident_id, actor, "release of the hold")
    if not may_release(actor, incident):
        raise refusal(actor, f"release of the hold of incident {incident_id}",
                      detail="only desk roles and the property unit assigned to the incident may release a hold")
    if incident.site is None or incident.edge is None or incident.camera is None or incident.zone is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this incident did not come from a camera zone")
    args = {"camera": incident.camera, "zone": incident.zone, "by": actor.username, "reason": body.reason}
    row = _release_command(session, ctx, incident.site, incident.edge, args, actor, incident.id)
    audit.append(session, incident.id, ctx.workflow().clock.now(), actor.username, actuations.RELEASE_REQUESTED,
                 incident.state, incident.state, body.reason, {"command_id": row.command_id,
                                                               "holding": [r.actuator for r in actuations.holding(session, incident)]})
    session.commit()
    ctx.changed()
    return ReleaseOut(command_id=row.command_id, edge=incident.edge, args=args)


@router.post("/edges/{edge}/actuators/{actuator}/release", status_code=202, response_model=ReleaseOut,
             responses=responses(401, 403, 404))
def release_actuator(edge: str, actuator: str, body: ReleaseIn, session: DbSession, ctx: Ctx,
                     actor: Annotated[Actor, Depends(require_roles(*DESK_ROLES))]) -> ReleaseOut:
    """Tell the edge to let go of every hold on one actuator."""
    site = ctx.site
    edge_config = next((e for e in site.edges if e.id == edge), None) if site is not None else None
    if site is None or edge_config is None or all(a.id != actuator for a in edge_config.actuators):
        raise HTTPException(404, detail=f"no actuator {actuator} on edge {edge} in this site's configuration")
    cells = frozenset(c.grid_cell for c in edge_config.cameras if c.grid_cell)
    if not overlaps(actor, cells):
        raise refusal(actor, f"edge {edge} is outside their grid", status.HTTP_404_NOT_FOUND,
                      f"no actuator {actuator} on edge {edge} in this site's configuration")
    args = {"actuator": actuator, "by": actor.username, "reason": body.reason}
    row = _release_command(session, ctx, site.site, edge, args, actor)
    session.commit()
    ctx.changed()
    return ReleaseOut(command_id=row.command_id, edge=edge, args=args)
