"""The inventory in the database, on SQLite and PostgreSQL: the first start takes the site file's
edges, later starts keep the database's (a redrawn zone survives a restart), import and export
round-trip, a bad catalogue is refused naming every bad row, the dry run stores nothing, and the
API adds, edits, moves and retires cameras and edges as versions with their commands."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from central.cli import app as central_cli
from central.server import build_central
from central.store.config_tables import EdgeConfigChange
from central.store.tables import CommandRow
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, WF_PASSWORD, workflow_config, workflow_site

PROJECT = Path(__file__).resolve().parents[2]
LANE = {"id": "lane", "kind": "fire_lane", "polygon": [[0.1, 0.6], [0.9, 0.6], [0.9, 0.7], [0.1, 0.7]], "dwell_s": 30}


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(central_cli, ["inventory", *args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def versions(database_url: str) -> int:
    from central.store.db import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(EdgeConfigChange)) or 0
    finally:
        engine.dispose()


def test_import_export_round_trip_and_a_bad_catalogue(database_url: str, tmp_path: Path) -> None:
    code, out = cli("import", str(PROJECT / "configs" / "demo.yaml"), "--dry-run", "--database-url", database_url)
    assert code == 0, out
    assert "edge edge-1: added: street-north, elevator-1" in out and versions(database_url) == 0
    code, out = cli("import", str(PROJECT / "configs" / "demo.yaml"), "--database-url", database_url, "--reason", "first")
    assert code == 0 and versions(database_url) == 1, out
    exported = tmp_path / "inventory.yaml"
    code, out = cli("export", "--out", str(exported), "--database-url", database_url)
    assert code == 0, out
    assert "${SHARPEYES_RTSP_PORT:-8554}" in exported.read_text()  # references stay references
    code, out = cli("import", str(exported), "--dry-run", "--database-url", database_url)
    assert code == 0 and "would change 0 edge(s)" in out and "1 edge(s) of the file unchanged" in out, out

    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("channel id,name,grid cell,url,longitude,latitude\n"
                         "11010100001320000001,ok,110101001001,rtsp://10.0.0.1/1,116.39,39.91\n"
                         "123,bad channel,110101001001,rtsp://10.0.0.1/2,116.39,39.91\n"
                         "11010100001320000003,creds,110101001001,rtsp://admin:pw@10.0.0.1/3,116.39,39.91\n"
                         "11010100001320000004,nowhere,no-such-cell,rtsp://10.0.0.1/4,116.39,91\n", encoding="utf-8")
    code, out = cli("import", str(catalogue), "--edge", "edge-2", "--database-url", database_url)
    assert code == 2 and "refused, nothing stored" in out, out
    for where in ("line 3, column channel_id", "line 4, column url", "line 5, column lat"):
        assert where in out
    assert versions(database_url) == 1

    catalogue.write_text("channel id,name,grid cell,url,longitude,latitude,edge\n"
                         "11010100001320000007,东门,110101001001,rtsp://${CAM_PW}@10.0.0.1/7,116.39,39.91,edge-2\n",
                         encoding="utf-8")
    code, out = cli("import", str(catalogue), "--dry-run", "--database-url", database_url)
    assert code == 0 and "edge edge-2: added: 11010100001320000007; new edge" in out and versions(database_url) == 1
    code, out = cli("import", str(catalogue), "--database-url", database_url)
    assert code == 0 and versions(database_url) == 2, out
    code, out = cli("export", "--out", "-", "--database-url", database_url)
    assert "11010100001320000007" in out and "东门" in out


def _central(database_url: str, tmp_path: Path, site=None):  # type: ignore[no-untyped-def]
    return build_central(site or workflow_site(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False,
                         workflow=workflow_config())


def _admin(client: TestClient) -> dict[str, str]:
    res = client.post("/api/v1/auth/token", data={"username": "admin", "password": WF_PASSWORD})
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def test_a_zone_drawn_at_central_survives_a_restart_with_the_original_file(database_url: str, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    first = _central(database_url, tmp_path)
    with TestClient(first.app) as client:
        pushed = client.put("/api/v1/cameras/street-north/zones", json={"zones": [LANE]}, headers=_admin(client))
        assert pushed.status_code == 202, pushed.text
    first.close()
    # The same site file again, which has no zone: the database's configuration wins, and says so.
    with caplog.at_level(logging.WARNING, logger="central.fleet.site_source"):
        second = _central(database_url, tmp_path)
    assert f"edge {EDGE}: the site file differs" in caplog.text and "inventory import" in caplog.text
    with TestClient(second.app) as client:
        admin = _admin(client)
        zones = {c["id"]: c["zones"] for s in client.get("/api/v1/sites", headers=admin).json()
                 for e in s["edges"] for c in e["cameras"]}
        assert [z["id"] for z in zones["street-north"]] == ["lane"]
        status = client.get("/api/v1/inventory", headers=admin).json()
        assert status["file_differences"][0]["edge"] == EDGE
        # A later push for another camera of the same edge leaves the zone alone.
        other = client.put("/api/v1/cameras/gate/zones", json={"zones": [LANE]}, headers=admin)
        assert other.status_code == 202, other.text
        with second.ctx.sessions() as session:
            command = session.get(CommandRow, other.json()["command_id"])
            sent = {c["id"]: c["zones"] for c in command.args["edge_config"]["edge"]["cameras"]}
        assert [z["id"] for z in sent["street-north"]] == ["lane"] and [z["id"] for z in sent["gate"]] == ["lane"]
    second.close()


def test_cameras_and_edges_are_added_edited_moved_and_retired(wf: Workflow) -> None:
    admin = wf.login("admin")
    post, patch = wf.client.post, wf.client.patch
    camera = {"id": "lobby", "url": "rtsp://viewer:${LOBBY_PW}@10.0.0.5/ch1", "grid_cell": "g1", "name": "大堂",
              "gb28181_channel_id": "11010100001320000009", "location": {"lon": 116.4, "lat": 39.9}, "zones": [LANE]}
    added = post("/api/v1/cameras", json={"edge": EDGE, "camera": camera, "reason": "new lobby camera"}, headers=admin)
    assert added.status_code == 202, added.text
    assert added.json()["edge"] == EDGE and added.json()["version"] == 2
    listed = wf.get("admin", "/api/v1/cameras", q="大堂").json()
    assert listed["total"] == 1 and listed["items"][0] | {"retired_at": None} == {
        "id": "lobby", "name": "大堂", "site": "demo", "edge": EDGE, "channel_id": "11010100001320000009",
        "grid_cell": "g1", "url": camera["url"], "lon": 116.4, "lat": 39.9, "model": "yolov8n", "zones": 1,
        "retired_at": None}
    assert wf.get("admin", "/api/v1/cameras", q="110101000013").json()["total"] == 1
    # Scope: chen (grid g3) sees no g1 camera; the chief of c1 sees g1 and g2, not g3.
    assert wf.get("chen", "/api/v1/cameras").status_code == 403
    assert sorted(c["id"] for c in wf.get("chief", "/api/v1/cameras").json()["items"]) == [
        "elevator-1", "lobby", "street-north"]
    assert wf.get("monitor-c2", "/api/v1/cameras").json()["total"] == 1

    creds = post("/api/v1/cameras", headers=admin,
                 json={"edge": EDGE, "camera": {**camera, "id": "x", "url": "rtsp://admin:pw@10.0.0.5/ch1"}})
    assert creds.status_code == 422 and "${" in creds.text and "url" in creds.text
    assert post("/api/v1/cameras", json={"edge": EDGE, "camera": camera}, headers=admin).status_code == 409

    edited = patch("/api/v1/cameras/lobby", json={"camera": {"name": "大堂东"}, "reason": "renamed"}, headers=admin)
    assert edited.status_code == 202, edited.text
    assert wf.get("admin", "/api/v1/cameras", q="大堂东").json()["total"] == 1

    new_edge = post("/api/v1/edges", json={"edge": {"id": "edge-2", "heartbeat_s": 30}, "reason": "second box"},
                    headers=admin)
    assert new_edge.status_code == 202 and new_edge.json()["version"] == 1, new_edge.text
    moved = post("/api/v1/cameras/lobby/move", json={"edge": "edge-2", "grid_cell": "g2"}, headers=admin)
    assert moved.status_code == 202, moved.text
    assert moved.json()["edge"] == "edge-2" and moved.json()["also"][0]["edge"] == EDGE
    row = wf.get("admin", "/api/v1/cameras", q="lobby").json()["items"][0]
    assert (row["edge"], row["grid_cell"], row["zones"]) == ("edge-2", "g2", 1)
    history = wf.get("admin", f"/api/v1/edges/{EDGE}/config/versions").json()["versions"]
    assert [v["action"] for v in history] == ["import", "camera_add", "camera_edit", "camera_move"]
    assert history[-1]["summary"]["cameras_removed"] == ["lobby"]

    refused = post("/api/v1/cameras/lobby/retire", json={"reason": "gone"}, headers=admin)
    assert refused.status_code == 409 and refused.json()["detail"]["confirm_removal"] == ["lobby"]
    retired = post("/api/v1/cameras/lobby/retire", json={"reason": "gone", "confirm_removal": ["lobby"]},
                   headers=admin)
    assert retired.status_code == 202, retired.text
    assert wf.get("admin", "/api/v1/cameras", q="lobby").json()["total"] == 0
    gone = wf.get("admin", "/api/v1/cameras", q="lobby", retired="true").json()["items"]
    assert gone[0]["id"] == "lobby" and gone[0]["retired_at"] is not None
    assert patch("/api/v1/cameras/lobby", json={"camera": {"name": "x"}}, headers=admin).status_code == 404

    retire_edge = post("/api/v1/edges/edge-2/retire", json={"reason": "box removed"}, headers=admin)
    assert retire_edge.status_code == 202, retire_edge.text  # it runs no camera now: nothing to confirm
    status = wf.get("admin", "/api/v1/inventory").json()
    assert status["retired_edges"] == ["edge-2"] and status["cameras"] == 3 and status["retired_cameras"] == 1
    with wf.central.ctx.sessions() as session:
        commands = session.scalars(select(CommandRow).where(CommandRow.name == "config")).all()
    assert len(commands) == 7 and {c.edge for c in commands} == {EDGE, "edge-2"}
    assert wf.client.post("/api/v1/cameras", json={"edge": EDGE, "camera": camera},
                          headers=wf.login("monitor")).status_code == 403
