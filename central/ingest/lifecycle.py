"""How one hazard event changes its incident: pure, so ordering rules are tested without a database."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from broker.payloads import HazardEvent, Phase
from central.workflow.vocabulary import Condition

if TYPE_CHECKING:
    from central.ingest.model import FoldedIncident
    from central.store.tables import Incident


def snapshot_of(event: HazardEvent) -> str | None:
    for ref in event.evidence:
        if ref.content_type == "image/jpeg":
            return ref.sha256
    return None


def apply_event(incident: Incident | FoldedIncident, event: HazardEvent) -> None:
    """Fold ``event`` into ``incident`` (any object with the Incident attributes).

    Events may arrive in any order (an edge's outbox replays after an outage), so every field is
    a monotone merge: earliest start, latest observation, highest score; an ``end`` stays final.
    """
    # Each assignment to a mapped attribute costs the ORM's change tracking: assign what changes.
    incident.event_count = (incident.event_count or 0) + 1
    if incident.max_score is None or event.score > incident.max_score:
        incident.max_score = event.score
    if event.started_at < incident.started_at:
        incident.started_at = event.started_at
    newest = event.observed_at >= incident.last_observed_at
    if event.observed_at > incident.last_observed_at:
        incident.last_observed_at = event.observed_at
    snapshot = snapshot_of(event)
    if snapshot is not None and _newer_snapshot(incident, event.observed_at, newest):
        incident.latest_snapshot_sha256 = snapshot
        incident.latest_snapshot_observed_at = event.observed_at
    if incident.zone is None and event.zone is not None:
        incident.zone = event.zone
    if event.phase == Phase.END:
        if incident.condition != Condition.CLEARED:
            incident.condition = Condition.CLEARED
        if incident.ended_at is None or event.observed_at > incident.ended_at:
            incident.ended_at = event.observed_at
    elif incident.condition is None:
        incident.condition = Condition.ACTIVE


def _newer_snapshot(incident: Incident | FoldedIncident, observed_at: datetime, newest: bool) -> bool:
    """Whether a snapshot observed at ``observed_at`` is newer than the incident's: judged against
    the snapshot's own observation, not the incident's latest event (an ``end`` has no snapshot, and
    arriving first it would otherwise let an older snapshot in). Incidents stored before the
    snapshot's time was kept fall back to the latest event."""
    if incident.latest_snapshot_sha256 is None:
        return True
    if incident.latest_snapshot_observed_at is None:
        return newest
    return observed_at >= incident.latest_snapshot_observed_at


def apply_episode(incident: Incident | FoldedIncident, observed_at: datetime) -> None:
    """A repeated episode of the same hazard at the same place merged into ``incident``: counted,
    and a cleared incident is active again when the new episode comes after its end."""
    incident.episode_count = (incident.episode_count or 1) + 1
    if incident.ended_at is not None and observed_at > incident.ended_at:
        incident.condition, incident.ended_at = Condition.ACTIVE, None
