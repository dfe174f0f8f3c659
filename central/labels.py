"""Human titles for hazards, Chinese first with English beside it, as the console shows them."""

from __future__ import annotations

HAZARD_TITLES: dict[str, str] = {
    "fire_lane_blocked": "消防通道占用 Fire lane blocked",
    "ebike_indoor": "电动车进楼 E-bike indoors",
    "zone_occupancy": "区域占用 Zone occupancy",
    "camera_offline": "摄像头离线 Camera offline",
    "camera_tampered": "摄像头遮挡 Camera tampered",
}


def incident_title(hazard: str, camera: str, zone: str | None) -> str:
    where = f"{camera}/{zone}" if zone else camera
    return f"{HAZARD_TITLES.get(hazard, hazard)} @ {where}"
