"""Every monitor review becomes a labelled picture: the learning loop's input (docs/models.md).

The picture is the raw frame of the incident's first event (the edge sends it beside the annotated
snapshot, so no drawing is ever learnt). Its boxes:

- confirm: the objects as detected, the hazard's own objects named by the hazard's class (a COCO
  ``motorcycle`` in an e-bike zone that a monitor confirms is an ``ebike``);
- dismiss: the objects without the hazard's (a hard negative: "no e-bike here"), with the reason;
- edit: the boxes as the reviewer drew them (``PUT /incidents/{id}/labels``), in the audit trail.

The newest row per incident is its label.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.store.learning_tables import ReviewLabel
from central.store.tables import Event, Incident
from central.workflow import audit

# The detector labels that ARE the hazard's object, and the dataset class they become when confirmed.
HAZARD_OBJECTS: dict[str, tuple[frozenset[str], str]] = {
    "ebike_indoor": (frozenset({"motorcycle", "bicycle", "ebike"}), "ebike"),
    "fire_lane_blocked": (frozenset({"car", "truck", "bus", "motorcycle", "ebike"}), ""),  # "" keeps the label
}
LABEL_ACTION = "label"  # audit action of a box edit


def first_frame(session: Session, incident: Incident) -> tuple[Event, str] | None:
    """The incident's earliest event that carries a raw frame, and that frame's sha256. The edge
    appends the raw frame after the annotated snapshot (edge/camera_worker.py), so it is the last
    JPEG of the event's evidence."""
    for event in session.scalars(select(Event).where(Event.incident_id == incident.id).order_by(Event.seq, Event.id)):
        pictures = [e["sha256"] for e in event.payload.get("evidence", []) if e.get("content_type") == "image/jpeg"]
        if len(pictures) >= 2:
            return event, pictures[-1]
    return None


def boxes_for(verdict: str, hazard: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The labelled boxes a confirm or dismiss makes of the detected OBJECTS (pure)."""
    own, dataset_class = HAZARD_OBJECTS.get(hazard, (frozenset(), ""))
    out = []
    for obj in objects:
        label = str(obj["label"])
        if label in own:
            if verdict == "dismissed":
                continue
            label = dataset_class or label
        out.append({"label": label, "box": [round(float(v), 6) for v in obj["box"]]})
    return out


def _add(session: Session, incident: Incident, event: Event, frame: str, verdict: str, reason: str | None,
         boxes: list[dict[str, Any]], reviewer: str, now: datetime) -> ReviewLabel:
    row = ReviewLabel(incident_id=incident.id, frame_sha256=frame, site=incident.site, camera=incident.camera or "",
                      hazard=incident.hazard, model=(event.payload.get("model") or {}).get("name"),
                      observed_at=event.observed_at, verdict=verdict, reason=reason, boxes=boxes, reviewer=reviewer,
                      at=now)
    session.add(row)
    return row


def record_verdict(session: Session, incident: Incident, action: str, reviewer: str, reason: str | None,
                   now: datetime) -> ReviewLabel | None:
    """The label a confirm or dismiss makes (None: the incident has no camera picture, e.g. Open311)."""
    found = first_frame(session, incident) if incident.camera else None
    if found is None:
        return None
    event, frame = found
    verdict = "confirmed" if action == "confirm" else "dismissed"
    return _add(session, incident, event, frame, verdict, reason,
                boxes_for(verdict, incident.hazard, event.payload.get("objects", [])), reviewer, now)


def record_edit(session: Session, incident: Incident, boxes: list[dict[str, Any]], reviewer: str,
                now: datetime) -> ReviewLabel:
    """The reviewer's own boxes for the incident's picture; audited with the boxes before and after."""
    found = first_frame(session, incident)
    if found is None:
        raise LookupError(f"incident {incident.id} has no camera picture to label")
    event, frame = found
    before = latest(session, incident.id)
    row = _add(session, incident, event, frame, "edited", None, boxes, reviewer, now)
    audit.append(session, incident.id, now, reviewer, LABEL_ACTION, incident.state, incident.state, None,
                 {"frame": frame, "boxes": boxes, "before": before.boxes if before is not None else None})
    return row


def latest(session: Session, incident_id: int) -> ReviewLabel | None:
    return session.scalars(select(ReviewLabel).where(ReviewLabel.incident_id == incident_id)
                           .order_by(ReviewLabel.id.desc()).limit(1)).first()


def current_labels(session: Session, *, since: datetime | None = None, hazard: str | None = None,
                   verdicts_only: bool = False) -> list[ReviewLabel]:
    """The newest label of every reviewed incident (optionally observed since SINCE, of one HAZARD;
    VERDICTS_ONLY: the newest confirm or dismiss, whatever boxes were drawn after it)."""
    newest = select(func.max(ReviewLabel.id)).group_by(ReviewLabel.incident_id)
    if verdicts_only:
        newest = newest.where(ReviewLabel.verdict.in_(("confirmed", "dismissed")))
    query = select(ReviewLabel).where(ReviewLabel.id.in_(newest)).order_by(ReviewLabel.observed_at, ReviewLabel.id)
    if since is not None:
        query = query.where(ReviewLabel.observed_at >= since)
    if hazard is not None:
        query = query.where(ReviewLabel.hazard == hazard)
    return list(session.scalars(query))
