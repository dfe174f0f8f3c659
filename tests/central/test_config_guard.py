"""Destructive configuration changes are guarded and reversible: a change that removes cameras or
zones (or empties an edge) names them in confirm_removal or gets a 409 listing what it would take
away; every version is stored (hash-chained) before central's view changes, and can be restored."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from broker.topics import event_topic
from central.fleet import config_history
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, SITE, event, wire

LANE = {"id": "lane", "kind": "fire_lane", "polygon": [[0.1, 0.6], [0.9, 0.6], [0.9, 0.7], [0.1, 0.7]], "dwell_s": 30}
CAMERAS = ["elevator-1", "gate", "street-north"]


def cameras(wf: Workflow) -> list[str]:
    sites = wf.get("admin", "/api/v1/sites").json()
    return sorted(c["id"] for s in sites for e in s["edges"] for c in e["cameras"])


def versions(wf: Workflow) -> dict:  # type: ignore[type-arg]
    res = wf.get("admin", f"/api/v1/edges/{EDGE}/config/versions")
    assert res.status_code == 200, res.text
    return res.json()


def test_emptying_an_edge_needs_its_cameras_named_and_is_restored_from_the_history(wf: Workflow) -> None:
    wf.ingest(event_topic(SITE, EDGE), wire(event("k-open", camera="street-north")))
    admin = wf.login("admin")
    site_before = wf.central.ctx.site

    refused = wf.client.post(f"/api/v1/edges/{EDGE}/config", json={"edge": {}}, headers=admin)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail["confirm_removal"] == detail["missing"] == CAMERAS
    assert [(i["camera"], i["state"]) for i in detail["affected"]["open_incidents"]] == [("street-north", "triage")]
    assert sorted(r["camera"] for r in detail["affected"]["pipl_register"]) == CAMERAS
    # Nothing changed: not central's view, not the history (the site file's edges, taken as the
    # first versions at central's first start), no command for the edge.
    assert wf.central.ctx.site is site_before and cameras(wf) == CAMERAS
    assert [(v["version"], v["action"], v["actor"]) for v in versions(wf)["versions"]] == [(1, "import", "site file")]

    wrong = wf.client.post(f"/api/v1/edges/{EDGE}/config", headers=admin,
                           json={"edge": {}, "confirm_removal": [*CAMERAS, "lobby"]})
    assert wrong.status_code == 409 and wrong.json()["detail"]["unexpected"] == ["lobby"]

    emptied = wf.client.post(f"/api/v1/edges/{EDGE}/config", headers=admin,
                             json={"edge": {}, "confirm_removal": CAMERAS, "reason": "edge replaced"})
    assert emptied.status_code == 202, emptied.text
    assert emptied.json()["summary"]["cameras_removed"] == CAMERAS and cameras(wf) == []
    history = versions(wf)
    assert history["chain_ok"] and [(v["version"], v["action"]) for v in history["versions"]] == [
        (1, "import"), (2, "push")]
    assert history["versions"][1]["reason"] == "edge replaced" and history["versions"][1]["actor"] == "admin"
    assert wf.get("admin", "/api/v1/pipl-register").json() == []

    stored = wf.get("admin", f"/api/v1/edges/{EDGE}/config/versions/1").json()
    assert sorted(c["id"] for c in stored["config"]["cameras"]) == CAMERAS
    restored = wf.client.post(f"/api/v1/edges/{EDGE}/config/versions/1/restore", headers=admin,
                              json={"reason": "undo"})
    assert restored.status_code == 202, restored.text
    assert restored.json()["summary"]["cameras_added"] == CAMERAS
    assert cameras(wf) == CAMERAS
    last = versions(wf)["versions"][-1]
    assert (last["version"], last["action"], last["restored_from"]) == (3, "restore", 1)
    command = wf.get("admin", f"/api/v1/commands/{restored.json()['command_id']}").json()
    assert command["name"] == "config" and command["status"] == "pending"
    assert wf.get("wang", f"/api/v1/edges/{EDGE}/config/versions").status_code == 403
    assert wf.get("admin", "/api/v1/edges/nowhere/config/versions").status_code == 404
    assert wf.get("admin", f"/api/v1/edges/{EDGE}/config/versions/9").status_code == 404


def test_removing_a_zone_needs_it_named(wf: Workflow) -> None:
    admin = wf.login("admin")
    put = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": [LANE]}, headers=admin)
    assert put.status_code == 202 and put.json()["summary"]["zones_added"] == ["street-north/lane"]
    cleared = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": []}, headers=admin)
    assert cleared.status_code == 409 and cleared.json()["detail"]["confirm_removal"] == ["street-north/lane"]
    cleared = wf.client.put("/api/v1/cameras/street-north/zones", headers=admin,
                            json={"zones": [], "confirm_removal": ["street-north/lane"]})
    assert cleared.status_code == 202 and cleared.json()["summary"]["zones_removed"] == ["street-north/lane"]
    assert [v["action"] for v in versions(wf)["versions"]] == ["import", "zones", "zones"]


def test_central_keeps_its_view_when_the_version_cannot_be_stored(wf: Workflow,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    site_before = wf.central.ctx.site

    def clash(*_args: object, **_kwargs: object) -> None:
        raise IntegrityError("INSERT", {}, Exception("another version 2"))

    monkeypatch.setattr(config_history, "record", clash)
    res = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": [LANE]}, headers=wf.login("admin"))
    assert res.status_code == 409 and "meanwhile" in res.json()["detail"]
    assert wf.central.ctx.site is site_before
