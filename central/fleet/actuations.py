"""What edges did to their actuators (door holds, voice warnings): stored as the edges said it,
shown with the incident they acted for and on the edge's page, and acted upon when a hold hit
its cap (the e-bike is still there after ``max_hold_s``: a person must go).

An actuation is linked to its incident by the hazard's incident_key, not by id: the edge drives
the door before it has encoded the evidence, so its record may reach central before the event
that opens the incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broker.payloads import Actuation, ActuationAction, ReleaseReason
from central.store.tables import ActuationRow, Incident, IncidentAlias
from central.workflow.engine import ActionInput, WorkflowEngine, edge_actor
from central.workflow.rules import OPEN_STATES
from central.workflow.vocabulary import Action

# Record-only audit actions of this module (statistics leave them out).
RELEASE_REQUESTED = "release_hold"


def store(session: Session, record: Actuation, received_at: datetime) -> bool:
    """Add the record; False when it was stored before (an edge resending for want of a receipt)."""
    event_id = str(record.event_id)
    if session.scalar(select(ActuationRow.id).where(ActuationRow.event_id == event_id)) is not None:
        return False
    session.add(ActuationRow(
        event_id=event_id, site=record.site, edge=record.edge, camera=record.camera, zone=record.zone,
        actuator=record.actuator, kind=record.kind, action=record.action.value,
        reason=record.reason.value if record.reason else None, ok=record.ok, error=record.error,
        incident_key=record.incident_key, at=record.at, held_since=record.held_since, latency_ms=record.latency_ms,
        by=record.by, received_at=received_at,
    ))
    return True


def incident_for_key(session: Session, incident_key: str) -> Incident | None:
    incident = session.scalar(select(Incident).where(Incident.incident_key == incident_key))
    if incident is not None:
        return incident
    alias = session.get(IncidentAlias, incident_key)
    return session.get(Incident, alias.incident_id) if alias is not None else None


def escalate_if_capped(session: Session, workflow: WorkflowEngine, record: Actuation, incident: Incident | None) -> bool:
    """A hold released at its cap escalates its open incident; True when it did."""
    if record.reason != ReleaseReason.MAX_HOLD or incident is None or incident.state not in OPEN_STATES:
        return False
    held = (record.at - record.held_since).total_seconds() if record.held_since else None
    how_long = f" after {held:.0f} s" if held is not None else ""
    workflow.act(session, incident, Action.ESCALATE, edge_actor(record.edge), ActionInput(
        reason=f"{record.actuator} released at its cap{how_long}: the hazard is still there, a person must act"))
    return True


def _keys(session: Session, incident: Incident) -> list[str]:
    """The incident's own key and those of the episodes merged into it."""
    return [incident.incident_key, *session.scalars(
        select(IncidentAlias.incident_key).where(IncidentAlias.incident_id == incident.id))]


def for_incident(session: Session, incident: Incident) -> list[ActuationRow]:
    keys = _keys(session, incident)
    return list(session.scalars(select(ActuationRow).where(ActuationRow.incident_key.in_(keys))
                                .order_by(ActuationRow.at, ActuationRow.id)))


@dataclass(frozen=True)
class ActuatorState:
    """An actuator as its newest record leaves it: ``held`` (for a camera and zone, since when),
    ``idle`` or ``failing`` (the device did not acknowledge)."""

    state: str
    camera: str | None = None
    zone: str | None = None
    since: datetime | None = None
    at: datetime | None = None
    error: str | None = None
    incident_key: str | None = None


def state_of(row: ActuationRow | None) -> ActuatorState:
    if row is None:
        return ActuatorState("idle")
    if not row.ok:
        return ActuatorState("failing", row.camera, row.zone, row.held_since, row.at, row.error, row.incident_key)
    if row.action == ActuationAction.RELEASE.value:
        return ActuatorState("idle", at=row.at)
    return ActuatorState("held", row.camera, row.zone, row.held_since, row.at, None, row.incident_key)


def newest_per_actuator(session: Session, site: str, edge: str | None = None) -> dict[tuple[str, str], ActuationRow]:
    """(edge, actuator) -> its newest record (of one edge, or of every edge of the site)."""
    scope = ActuationRow.site == site
    if edge is not None:
        scope = scope & (ActuationRow.edge == edge)
    newest = (select(ActuationRow.edge, ActuationRow.actuator, func.max(ActuationRow.id).label("id"))
              .where(scope).group_by(ActuationRow.edge, ActuationRow.actuator).subquery())
    rows = session.scalars(select(ActuationRow).join(newest, ActuationRow.id == newest.c.id))
    return {(r.edge, r.actuator): r for r in rows}


def holding(session: Session, incident: Incident) -> list[ActuationRow]:
    """The actuators that hold for this incident now (their newest record is a hold or renewal of it)."""
    if incident.site is None or incident.edge is None:
        return []
    keys = set(_keys(session, incident))
    rows = newest_per_actuator(session, incident.site, incident.edge).values()
    return [r for r in rows if r.incident_key in keys and state_of(r).state == "held"]

