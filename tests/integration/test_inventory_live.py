"""A camera added through the API, and one added by importing a catalogue CSV, start producing
events on a running edge (a real EdgeNode on the RTSP footage, a real Mosquitto) with no restart of
central or the edge: each change is a version whose config command the edge applies live, and
central files the new camera's events as incidents rather than dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from broker.siteconfig import SiteConfig
from central.cli import app as central_cli
from tests.support import central_and_edge, wait_until

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "admin-password-long"


def _site(port: int) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": "inv", "broker": {"host": "127.0.0.1", "port": port},
        "edges": [{"id": "e1", "cameras": []}],
        "grid": [{"code": "g1", "name": "Grid 1", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "w1"}],
        "users": [{"username": "admin", "role": "admin", "password_env": "INV_ADMIN_PW"}],
    })


def _zones() -> list[dict]:  # type: ignore[type-arg]
    zones = yaml.safe_load((ROOT / "configs/cameras/street-parked.yaml").read_text())["zones"]
    for zone in zones:
        zone.update(dwell_s=4, clear_s=30, realarm_s=600)
    return zones


@pytest.mark.timeout(240)
def test_cameras_added_by_api_and_by_csv_produce_events_without_a_restart(  # type: ignore[no-untyped-def]
        mosquitto, rtsp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INV_ADMIN_PW", PASSWORD)
    street = rtsp_server.url("street_parked_cars_720p.mp4")
    with central_and_edge(_site(mosquitto.port), "e1", tmp_path) as (central, node), \
            TestClient(central.app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}).json()
        admin = {"Authorization": f"Bearer {token['access_token']}"}

        def incidents_of(camera: str) -> list[dict]:  # type: ignore[type-arg]
            return client.get("/api/v1/incidents", headers=admin, params={"camera": camera}).json()["items"]

        added = client.post("/api/v1/cameras", headers=admin, json={"edge": "e1", "reason": "new camera", "camera": {
            "id": "api-cam", "url": street, "detect_fps": 1, "grid_cell": "g1", "clips": False, "zones": _zones()}})
        assert added.status_code == 202, added.text
        wait_until(lambda: node.worker("api-cam"), 30, what="the edge to start the camera added through the API")
        wait_until(lambda: incidents_of("api-cam"), 120, what="an incident from the camera added through the API")

        # A catalogue row, imported while central and the edge run; the running central sees the new
        # version, sends the edge its configuration, and the operator draws the camera's zone.
        catalogue = tmp_path / "catalogue.csv"
        # The catalogue lists every camera of the edge (one it leaves out would be retired): the camera
        # added through the API keeps its zones, which the catalogue does not speak of.
        catalogue.write_text("id,channel id,name,grid cell,url,longitude,latitude,edge\n"
                             f"api-cam,,,g1,{street},,,e1\n"
                             f",11010100001320000042,东门,g1,{street},116.39,39.91,e1\n", encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'central.db'}"
        result = CliRunner().invoke(central_cli, ["inventory", "import", str(catalogue), "--database-url", url,
                                                  "--reason", "catalogue"])
        assert result.exit_code == 0 and "added: 11010100001320000042" in result.output, result.output
        assert result.output.splitlines()[0] == "edge e1: added: 11010100001320000042", result.output
        camera = "11010100001320000042"
        wait_until(lambda: node.worker(camera), 30, what="the edge to start the imported camera")
        zones = client.put(f"/api/v1/cameras/{camera}/zones", headers=admin, json={"zones": _zones()})
        assert zones.status_code == 202, zones.text
        wait_until(lambda: incidents_of(camera), 120, what="an incident from the imported camera")
        assert node.worker("api-cam") is not None  # kept running through the later changes
        dead = client.get("/api/v1/dead-letters", headers=admin).json()
        assert not [d for d in dead["items"] if camera in d["payload_preview"] or "api-cam" in d["payload_preview"]]
