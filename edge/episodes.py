"""How an episode is named on the wire: one incident key format for every hazard the edge raises."""

from __future__ import annotations

from datetime import datetime, timedelta

from broker.payloads import HazardKind


def episode_start(wall: datetime, t: float, started_t: float) -> datetime:
    """The wall-clock start of a condition that began at camera time ``started_t``, seen at ``t``.

    Fixed once per episode: recomputing it at each update would drift with the camera clock."""
    return wall - timedelta(seconds=max(0.0, t - started_t))


def incident_key(site: str, edge: str, camera: str, zone: str | None, hazard: HazardKind, started_at: datetime) -> str:
    """Stable for one episode across its start, updates and end; ``-`` stands for camera-wide hazards."""
    return f"{site}/{edge}/{camera}/{zone or '-'}/{hazard.value}/{int(started_at.timestamp() * 1000)}"
