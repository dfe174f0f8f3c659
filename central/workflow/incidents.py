"""How an incident comes into being, whatever reported it: a camera's hazard event (ingest) or a
resident's report (Open311). One constructor, so both start in the same state with the same
defaults; the workflow's ``on_created`` then decides what it becomes (suppressed, registered,
triage)."""

from __future__ import annotations

from datetime import datetime

from central.store.tables import Incident
from central.workflow.vocabulary import Condition, IncidentSource, State


def new_incident(*, incident_key: str, hazard: str, site: str, source: IncidentSource, started_at: datetime,
                 observed_at: datetime, grid_cell: str | None, assigned_worker: str | None,
                 edge: str | None = None, camera: str | None = None, zone: str | None = None, max_score: float = 0.0,
                 description: str | None = None, address: str | None = None, lat: float | None = None,
                 lon: float | None = None) -> Incident:
    return Incident(
        incident_key=incident_key, hazard=hazard, site=site, edge=edge, camera=camera, zone=zone, grid_cell=grid_cell,
        state=State.RECEIVED, condition=Condition.ACTIVE, started_at=started_at, last_observed_at=observed_at,
        max_score=max_score, event_count=0, assigned_worker=assigned_worker, source=source, description=description,
        address=address, lat=lat, lon=lon,
        # Columns with a server default, given here: else a flush asks the database for them (one
        # INSERT ... RETURNING per incident on SQLite, which a burst of new incidents feels).
        episode_count=1, rework_count=0, escalation_level=0, supervised=False, ever_overdue=False,
    )
