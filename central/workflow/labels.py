"""Human titles for hazards, Chinese first with English beside it, as the console shows them.

The titles themselves are defined with the zone kinds (broker/zonekinds.py), one place per hazard."""

from __future__ import annotations

from broker.zonekinds import HAZARD_TITLES

__all__ = ["HAZARD_TITLES", "incident_title"]


def incident_title(hazard: str, camera: str, zone: str | None) -> str:
    where = f"{camera}/{zone}" if zone else camera
    return f"{HAZARD_TITLES.get(hazard, hazard)} @ {where}"
