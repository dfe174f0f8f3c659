"""Automatic checking through a real edge: central sends ``recheck`` over Mosquitto to an EdgeNode
watching the real street footage over RTSP, and the edge's answer passes or fails the check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from broker.payloads import HazardKind
from broker.siteconfig import SiteConfig
from broker.topics import event_topic
from central.ingest.service import IngestService
from central.server import Central
from tests.central.factories import event, wire
from tests.support import central_and_edge, wait_until

PARKED = {"id": "near-kerb", "kind": "fire_lane", "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]],
          "dwell_s": 600, "clear_s": 30, "realarm_s": 600}
LANE = {"id": "driving-lane", "kind": "fire_lane", "polygon": [[0.25, 0.62], [0.80, 0.60], [0.80, 0.70], [0.25, 0.72]],
        "dwell_s": 600, "clear_s": 30, "realarm_s": 600}


def _site(port: int, url: str) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": "rc",
        "broker": {"host": "127.0.0.1", "port": port},
        "edges": [{"id": "e1", "cameras": [{"id": "cam", "url": url, "detect_fps": 1, "decode": "all",
                                             "grid_cell": "g1", "zones": [PARKED, LANE], "clips": False}]}],
        "grid": [{"code": "g1", "name": "Grid 1", "workers": ["w1"]}],
        "workers": [{"id": "w1", "name": "W"}],
        "users": [{"username": "admin", "role": "admin", "password": "admin-pw-1"}],
    })


@pytest.fixture
def live(mosquitto, rtsp_server, tmp_path: Path) -> Iterator[tuple[Central, TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    site = _site(mosquitto.port, rtsp_server.url("street_parked_cars_720p.mp4"))
    with central_and_edge(site, "e1", tmp_path) as (central, _node), TestClient(central.app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw-1"})
        yield central, client, {"Authorization": f"Bearer {token.json()['access_token']}"}


def _to_feedback(central: Central, client: TestClient, headers: dict[str, str], zone: str) -> int:
    ev = event(f"rc-{zone}", site="rc", edge="e1", camera="cam", zone=zone, hazard=HazardKind.FIRE_LANE_BLOCKED)
    with central.ctx.sessions() as session:
        outcome = IngestService(session, central.ctx.evidence, central.ingest.deps.router, central.workflow).handle(
            event_topic("rc", "e1"), wire(ev))
    iid = outcome.incident_id
    assert iid is not None
    for action, body in (("accept", {}), ("feedback", {"note": "cleared, please verify"})):
        res = client.post(f"/api/v1/incidents/{iid}/actions/{action}", json=body, headers=headers)
        assert res.status_code == 200, res.text
    return iid


@pytest.mark.timeout(180)
def test_edge_recheck_fails_a_blocked_lane_and_passes_a_clear_one(live) -> None:  # type: ignore[no-untyped-def]
    central, client, headers = live
    kerb = _to_feedback(central, client, headers, "near-kerb")
    lane = _to_feedback(central, client, headers, "driving-lane")
    for iid in (kerb, lane):
        res = client.post(f"/api/v1/incidents/{iid}/actions/check", json={"mode": "auto"}, headers=headers)
        assert res.status_code == 200 and res.json()["state"] == "checking", res.text

    def state(iid: int) -> dict:
        return client.get(f"/api/v1/incidents/{iid}", headers=headers).json()

    # The parked cars are still on the kerb: the check fails and the case goes back for rework.
    failed = wait_until(lambda: (s := state(kerb))["state"] != "checking" and s, 90, what="recheck of the kerb")
    assert (failed["state"], failed["rework_count"]) == ("in_progress", 1)
    assert failed["checks"][0]["present"] is True and failed["checks"][0]["status"] == "ok"
    snapshot = failed["checks"][0]["snapshot_sha256"]
    assert {"sha256": snapshot, "kind": "check", "available": True}.items() <= next(
        e for e in failed["evidence"] if e["sha256"] == snapshot).items()
    assert client.get(f"/api/v1/evidence/{snapshot}", headers=headers).content[:2] == b"\xff\xd8"

    passed = wait_until(lambda: (s := state(lane))["state"] != "checking" and s, 90, what="recheck of the lane")
    assert (passed["state"], passed["close_reason"]) == ("closed", "fixed")
    history = client.get(f"/api/v1/incidents/{lane}/history", headers=headers).json()
    assert history[-1]["action"] == "pass" and history[-1]["actor"] == "edge:e1"
