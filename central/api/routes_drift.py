"""Every edge's drift: the configuration version central wants it to run (its newest in the
configuration history) against the one the edge reports it applied, since when they differ and why
(the edge's own problems where it refused the version). Desk roles; an edge shows when one of its
cameras is in the caller's scope, as on GET /sites (central/fleet/desired_state.py, drift.py).

Not ``/edges/drift``: under ``/edges/{edge}`` an edge named "drift" (a valid id) would collide with it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from central.api.deps import Ctx, DbSession, DeskActor
from central.api.errors import responses
from central.fleet.desired_state import drift

router = APIRouter()


class EdgeDriftOut(BaseModel):
    edge: str
    site: str
    desired_version: int | None = Field(description="the newest version in the edge's configuration history; "
                                        "null: none on record, central runs the site file's configuration")
    applied_version: int | None = Field(description="the version the edge reports it runs; null: not reported "
                                        "(an edge too old to say, or running a configuration central never numbered)")
    applied_at: datetime | None = Field(description="since when the edge runs it, by its own clock")
    in_sync: bool = Field(description="the edge runs the desired configuration (compared by content)")
    drift_since: datetime | None = Field(description="since when it does not: the first version it lacks was stored")
    problems: list[str] = Field(description="why not: the edge's refusal, or that it is offline or still applying")
    last_heartbeat_at: datetime | None = Field(description="the edge's newest status")


@router.get("/edge-drift", response_model=list[EdgeDriftOut], responses=responses(401, 403))
def edges_drift(actor: DeskActor, session: DbSession, ctx: Ctx,
                drifting: Annotated[bool, Query(description="only the edges that are not in sync")] = False,
                ) -> list[dict[str, object]]:
    """Desired against applied configuration of every edge in the caller's scope."""
    site = ctx.site
    if site is None:
        return []
    edges = [e.id for e in site.edges
             if actor.scope is None or any(actor.in_scope(c.grid_cell) for c in e.cameras)]
    rows = drift(session, site, edges)
    return [r for r in rows if not (drifting and r["in_sync"])]
