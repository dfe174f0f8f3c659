"""The workflow through the HTTP API on SQLite and PostgreSQL: lifecycle, 409s, scopes, merge,
silences, false alarms, audit history and its verification, statistics, Open311."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from broker.payloads import HazardKind, Phase
from broker.topics import event_topic, evidence_topic
from central.store.tables import Incident, Task
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, G3_AREA, SITE, event, jpeg_bytes, sha, wire

EVENTS = event_topic(SITE, EDGE)


def incident_of(wf: Workflow, key: str) -> dict:
    with wf.central.ctx.sessions() as s:
        row = s.scalar(select(Incident).where(Incident.incident_key == key))
        assert row is not None, key
        incident_id = row.id
    res = wf.get("admin", f"/api/v1/incidents/{incident_id}")
    assert res.status_code == 200, res.text
    return res.json()


def ok(res) -> dict:  # type: ignore[no-untyped-def]
    assert res.status_code == 200, res.text
    return res.json()


def test_fire_lane_goes_round_the_loop_with_unit_feedback_photos_and_a_second_checker(wf: Workflow) -> None:
    wf.ingest(EVENTS, wire(event("k-loop", score=0.9)))
    iid = incident_of(wf, "k-loop")["id"]
    inc = ok(wf.get("monitor", f"/api/v1/incidents/{iid}"))
    assert inc["state"] == "triage" and inc["allowed_actions"] == ["confirm", "dismiss", "merge"]
    # A grid worker cannot confirm, and a wrong action gets 409 with what is possible.
    assert wf.act("wang", iid, "confirm").status_code == 403
    conflict = wf.act("admin", iid, "accept")
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["allowed"] == ["confirm", "dismiss", "close", "merge", "supervise"]

    # Confirmed → dispatched by rule: fire lanes to the property company, the grid worker supervises.
    inc = ok(wf.act("monitor", iid, "confirm", reason="seen on the snapshot"))
    assert (inc["state"], inc["assigned_unit"], inc["assigned_worker"]) == ("dispatched", "pm-1", "wang-fang")
    assert inc["stage"] == "accept" and inc["deadline_color"] == "green"
    with wf.central.ctx.sessions() as s:
        assert [t.worker for t in s.scalars(select(Task).where(Task.incident_id == iid))] == ["wang-fang"]
    assert wf.get("wang", f"/api/v1/incidents/{iid}").json()["allowed_actions"] == []  # supervises only
    assert wf.act("wang", iid, "accept").status_code == 403
    assert wf.act("other-unit", iid, "accept").status_code == 404  # not theirs to see: as if there were none

    assert ok(wf.act("property", iid, "accept"))["state"] == "in_progress"
    photo = jpeg_bytes("after-the-fix")
    up = wf.client.post("/api/v1/uploads", files={"file": ("fixed.jpg", photo, "image/jpeg")},
                        headers=wf.login("property"))
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    bad = wf.client.post("/api/v1/uploads", files={"file": ("x.txt", b"not a photo", "text/plain")},
                         headers=wf.login("property"))
    assert bad.status_code == 415
    assert wf.act("property", iid, "feedback", note="moved", photos=["0" * 64]).status_code == 422
    inc = ok(wf.act("property", iid, "feedback", note="车已挪走 car moved", photos=[sha]))
    assert inc["state"] == "feedback" and inc["feedback"][0]["photos"] == [sha]
    assert {"sha256": sha, "kind": "photo"}.items() <= next(e for e in inc["evidence"] if e["sha256"] == sha).items()
    seen = wf.client.get(f"/api/v1/evidence/{sha}", headers=wf.login("wang"))  # a grid worker: redacted only
    assert seen.status_code == 200 and seen.headers["content-type"] == "image/jpeg" and seen.content != photo
    assert wf.client.get(f"/api/v1/evidence/{sha}", params={"original": "true", "reason": "compare"},
                         headers=wf.login("wang")).status_code == 403
    assert wf.client.get(f"/api/v1/evidence/{sha}", params={"original": "true", "reason": "review the fix"},
                         headers=wf.login("monitor")).content == photo

    assert ok(wf.act("chief", iid, "check"))["state"] == "checking"
    assert wf.act("property", iid, "pass").status_code == 403  # not a checker
    # Rework once, then passed.
    inc = ok(wf.act("chief", iid, "fail", reason="still a car on the photo's left"))
    assert (inc["state"], inc["rework_count"]) == ("in_progress", 1)
    ok(wf.act("property", iid, "feedback", note="second car moved too"))
    ok(wf.act("monitor", iid, "check"))
    inc = ok(wf.act("monitor", iid, "pass", reason="clear"))
    assert (inc["state"], inc["close_reason"], inc["allowed_actions"]) == ("closed", "fixed", [])
    assert wf.act("admin", iid, "close", reason="again").status_code == 409

    history = ok(wf.get("monitor", f"/api/v1/incidents/{iid}/history"))
    assert [h["action"] for h in history if h["action"] != "evidence_read"] == [
        "receive", "triage", "confirm", "dispatch", "accept", "feedback", "check", "fail", "feedback", "check", "pass"]
    # The photo's two reads are in the same chain: wang's redacted one, the monitor's original with its reason.
    reads = [(h["actor"], h["payload"]["variant"], h["reason"]) for h in history if h["action"] == "evidence_read"]
    assert reads == [("wang", "redacted", None), ("monitor", "original", "review the fix")]
    assert history[2]["actor"] == "monitor" and history[2]["reason"] == "seen on the snapshot"
    assert all(h["prev_hash"] == p["hash"] for p, h in pairwise(history))
    assert ok(wf.get("monitor", f"/api/v1/incidents/{iid}/history/verify"))["ok"] is True

    stats = ok(wf.get("supervisor", "/api/v1/stats"))
    assert stats["closed"] == 1 and stats["closure_rate"] == 1.0 and stats["rework_rate"] == 1.0
    assert stats["on_time_rate"] == 1.0 and stats["mean_stage_s"]["handle"] == 0.0


def test_scopes_for_each_role(wf: Workflow, caplog: pytest.LogCaptureFixture) -> None:
    snapshot = jpeg_bytes("scoped-snapshot")
    wf.ingest(EVENTS, wire(event("k-g1", camera="street-north", snapshot=snapshot)))
    wf.ingest(evidence_topic(SITE, EDGE, sha(snapshot)), snapshot)
    wf.ingest(EVENTS, wire(event("k-g2", camera="elevator-1", zone="car", hazard=HazardKind.ZONE_OCCUPANCY)))
    wf.ingest(EVENTS, wire(event("k-g3", camera="gate", zone="door", hazard=HazardKind.ZONE_OCCUPANCY)))
    ids = {k: incident_of(wf, k)["id"] for k in ("k-g1", "k-g2", "k-g3")}
    ok(wf.act("monitor", ids["k-g2"], "confirm"))  # → dispatched to li-qiang (no unit rule)

    def seen(user: str) -> set[str]:
        return {i["incident_key"] for i in ok(wf.get(user, "/api/v1/incidents"))["items"]}

    assert seen("admin") == seen("supervisor") == seen("monitor") == {"k-g1", "k-g2", "k-g3"}
    assert seen("monitor-c2") == {"k-g3"}
    assert seen("chief") == {"k-g1", "k-g2"}
    assert seen("wang") == {"k-g1"}
    assert seen("li") == {"k-g2"}
    assert seen("chen") == {"k-g3"}
    assert seen("property") == set()  # nothing dispatched to the unit yet

    caplog.set_level(logging.WARNING, logger="central.access")
    assert wf.get("monitor-c2", f"/api/v1/incidents/{ids['k-g1']}").status_code == 404
    # Acting on an incident outside the scope answers as for one that does not exist (issue 29).
    assert wf.act("monitor-c2", ids["k-g1"], "confirm").status_code == 404
    assert wf.act("chief", ids["k-g3"], "supervise").status_code == 404
    assert wf.act("chen", ids["k-g2"], "accept").status_code == 404
    assert wf.get("wang", f"/api/v1/incidents/{ids['k-g2']}/history").status_code == 404
    # Evidence follows the incident's scope, for every role with a limited grid.
    assert wf.get("monitor-c2", f"/api/v1/evidence/{sha(snapshot)}").status_code == 404
    assert wf.get("chief", f"/api/v1/evidence/{sha(snapshot)}", original="true", reason="in my grid").content == snapshot
    refused = [r.getMessage() for r in caplog.records if r.name == "central.access" and "refused" in r.getMessage()]
    assert len(refused) == 6
    # Role-only endpoints.
    assert wf.get("wang", "/api/v1/users").status_code == 403
    assert wf.get("supervisor", "/api/v1/users").status_code == 200
    assert wf.client.post("/api/v1/suppressions", json={"camera": "gate", "duration_s": 60, "reason": "x"},
                          headers=wf.login("chen")).status_code == 403
    me = ok(wf.get("chief", "/api/v1/me"))
    assert me["grid"] == ["c1"] and me["scope"] == ["c1", "g1", "g2"]
    # The grid tree and the supervision board are cut to the user's scope too.
    assert {n["code"] for n in ok(wf.get("monitor-c2", "/api/v1/grid"))} == {"c2", "g3"}
    board = ok(wf.get("chief", "/api/v1/supervision"))
    assert {n["code"] for n in board["by_grid"]} == {"c1", "g1", "g2"}


def test_repeated_episodes_merge_and_manual_merge_closes_the_duplicate(wf: Workflow) -> None:
    wf.ingest(EVENTS, wire(event("k-ep1", observed_after_s=0)))
    wf.ingest(EVENTS, wire(event("k-ep1", Phase.END, observed_after_s=60, seq=2)))
    assert incident_of(wf, "k-ep1")["condition"] == "cleared"
    # The same car is detected again ten minutes later: a new episode of the same open incident.
    later = event("k-ep2", started_at=event("x").started_at + timedelta(minutes=10))
    wf.ingest(EVENTS, wire(later))
    merged = incident_of(wf, "k-ep1")
    assert merged["episode_count"] == 2 and merged["condition"] == "active" and merged["event_count"] == 3
    with wf.central.ctx.sessions() as s:
        assert s.scalar(select(Incident).where(Incident.incident_key == "k-ep2")) is None
    # Outside the window (an hour by default) it is a new incident.
    wf.ingest(EVENTS, wire(event("k-ep3", started_at=later.started_at + timedelta(hours=3))))
    separate = incident_of(wf, "k-ep3")
    assert separate["id"] != merged["id"]

    res = wf.act("monitor", separate["id"], "merge", target_id=merged["id"], reason="same parked car")
    closed = ok(res)
    assert (closed["state"], closed["close_reason"], closed["merged_into"]) == ("closed", "duplicate", merged["id"])
    assert incident_of(wf, "k-ep1")["episode_count"] == 3
    actions = [h["action"] for h in ok(wf.get("admin", f"/api/v1/incidents/{merged['id']}/history"))]
    assert actions == ["receive", "triage", "episode", "absorb"]
    assert wf.act("monitor", merged["id"], "merge", target_id=merged["id"]).status_code == 422


def test_dismissals_count_false_alarms_per_camera_and_a_silence_files_new_ones_closed(wf: Workflow) -> None:
    for key in ("k-fa1", "k-fa2"):
        wf.ingest(EVENTS, wire(event(key, camera="gate", zone="door",
                                     started_at=event("x").started_at + timedelta(hours=2 if key == "k-fa2" else 0))))
    a, b = incident_of(wf, "k-fa1")["id"], incident_of(wf, "k-fa2")["id"]
    assert wf.act("monitor", a, "dismiss").status_code == 422  # a reason is required
    assert ok(wf.act("monitor", a, "dismiss", reason="shadow on the ground"))["close_reason"] == "false_alarm"
    ok(wf.act("monitor", b, "confirm"))
    stats = ok(wf.get("admin", "/api/v1/stats"))
    assert {"camera": "gate", "incidents": 2, "false_alarms": 1, "rate": 0.5} in stats["false_alarm_rate_by_camera"]

    silence = wf.client.post("/api/v1/suppressions", json={"camera": "gate", "zone": "door", "duration_s": 3600,
                                                            "reason": "construction"}, headers=wf.login("monitor"))
    assert silence.status_code == 201, silence.text
    wf.ingest(EVENTS, wire(event("k-fa3", camera="gate", zone="door",
                                 started_at=event("x").started_at + timedelta(hours=5))))
    filed = incident_of(wf, "k-fa3")
    assert (filed["state"], filed["close_reason"], filed["assigned_unit"]) == ("closed", "suppressed", None)
    with wf.central.ctx.sessions() as s:
        assert s.scalar(select(Task).where(Task.incident_id == filed["id"])) is None
    # Another zone of the same camera is not silenced; after the silence ends neither is this one.
    wf.ingest(EVENTS, wire(event("k-fa4", camera="gate", zone="yard")))
    assert incident_of(wf, "k-fa4")["state"] == "triage"
    wf.clock.advance(3601)
    wf.ingest(EVENTS, wire(event("k-fa5", camera="gate", zone="door",
                                 started_at=event("x").started_at + timedelta(hours=9))))
    assert incident_of(wf, "k-fa5")["state"] == "triage"
    assert ok(wf.get("admin", "/api/v1/stats"))["suppressed"] == 1


def test_audit_verify_detects_an_edited_row(wf: Workflow, database_url: str) -> None:
    from central.cli import app

    wf.ingest(EVENTS, wire(event("k-audit")))
    iid = incident_of(wf, "k-audit")["id"]
    ok(wf.act("monitor", iid, "dismiss", reason="a reflection"))
    runner = CliRunner()
    intact = runner.invoke(app, ["audit", "verify", "--database-url", database_url])
    assert intact.exit_code == 0, intact.output
    assert "intact: 3 record(s)" in intact.output
    with wf.central.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'a real fire' WHERE action = 'dismiss'"))
    broken = runner.invoke(app, ["audit", "verify", "--database-url", database_url])
    assert broken.exit_code == 1
    assert f"incident {iid} record 3" in broken.output and "hash mismatch" in broken.output
    assert ok(wf.get("admin", f"/api/v1/incidents/{iid}/history/verify"))["ok"] is False


def test_open311_request_is_routed_by_location_and_reports_its_status(wf: Workflow) -> None:
    services = ok(wf.client.get("/open311/v2/services.json"))
    assert {"service_code": "other", "service_name": "其他 Other"}.items() <= services[-1].items()
    lon = (G3_AREA[0][0] + G3_AREA[1][0]) / 2
    lat = (G3_AREA[0][1] + G3_AREA[2][1]) / 2
    report = {"service_code": "other", "lat": str(lat), "long": str(lon),
              "description": "楼道堆物 stuff in the stairwell, call 13812345678", "media_url": "https://example.org/p.jpg"}
    # No key configured: intake is closed (central serve refuses to start like this outside --demo).
    assert wf.client.post("/open311/v2/requests.json", data=report).status_code == 403
    wf.central.ctx.workflow().config.open311.api_key = "k-311-hotline"
    assert wf.client.post("/open311/v2/requests.json", data=report).status_code == 403  # anonymous
    assert wf.client.post("/open311/v2/requests.json", data={**report, "api_key": "guess"}).status_code == 403
    posted = wf.client.post("/open311/v2/requests.json", data={**report, "api_key": "k-311-hotline"})
    assert posted.status_code == 201, posted.text
    request_id = posted.json()[0]["service_request_id"]
    got = ok(wf.client.get(f"/open311/v2/requests/{request_id}.json"))[0]
    assert (got["status"], got["service_code"], got["lat"], got["long"]) == ("open", "other", lat, lon)
    # The public read side masks the reporter's phone number and names no worker.
    assert got["description"] == "楼道堆物 stuff in the stairwell, call [phone]"
    assert got["media_url"] == "https://example.org/p.jpg"

    inc = ok(wf.get("monitor-c2", f"/api/v1/incidents/{request_id}"))
    assert (inc["source"], inc["grid_cell"], inc["state"]) == ("open311", "g3", "triage")
    inc = ok(wf.act("monitor-c2", int(request_id), "confirm"))
    assert (inc["state"], inc["assigned_worker"]) == ("dispatched", "chen")
    ok(wf.act("chen", int(request_id), "accept"))
    ok(wf.act("chen", int(request_id), "feedback", note="cleared"))
    ok(wf.act("monitor-c2", int(request_id), "check"))
    ok(wf.act("monitor-c2", int(request_id), "pass"))
    listed = ok(wf.client.get("/open311/v2/requests.json", params={"status": "closed"}))
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert listed[0]["status"] == "closed" and listed[0]["status_notes"] == "closed: fixed"

    assert listed[0]["agency_responsible"] == "grid"
    key = {"api_key": "k-311-hotline"}
    assert wf.client.post("/open311/v2/requests.json", data={"service_code": "nope", "lat": "1", "long": "1", **key}
                          ).status_code == 400
    assert wf.client.post("/open311/v2/requests.json", data={"service_code": "other", **key}).status_code == 400
    assert wf.client.get("/open311/v2/requests/99999.json").status_code == 404
    # Ids are validated (a 20-digit id used to overflow the database's integer: a 500).
    assert wf.client.get("/open311/v2/requests/12345678901234567890.json").status_code == 400
    assert wf.client.get("/open311/v2/requests.json", params={"service_request_id": "1,99999999999999999999"}
                         ).status_code == 400
    # A body is limited before it is read; a flood from one address is cut off.
    assert wf.client.post("/open311/v2/requests.json", content=b"x" * (65 * 1024),
                          headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 413
    codes = [wf.client.post("/open311/v2/requests.json", data={**report, **key}).status_code for _ in range(40)]
    assert 429 in codes and codes.count(201) < 30


def test_stats_index_and_csv(wf: Workflow) -> None:
    for i in range(4):
        wf.ingest(EVENTS, wire(event(f"k-st{i}", camera="elevator-1", zone="car", hazard=HazardKind.ZONE_OCCUPANCY,
                                     started_at=event("x").started_at + timedelta(hours=2 * i))))
    ids = [incident_of(wf, f"k-st{i}")["id"] for i in range(4)]
    ok(wf.act("monitor", ids[0], "dismiss", reason="nothing there"))
    for iid in ids[:3]:
        if iid != ids[0]:
            ok(wf.act("monitor", iid, "confirm"))
            ok(wf.act("admin", iid, "close", reason="handled by phone", close_reason="transferred"))
    stats = ok(wf.get("admin", "/api/v1/stats", grid="c1"))
    assert stats["total"] == 4 and stats["closed"] == 3 and stats["closure_rate"] == 0.75
    assert stats["counts_by_state"] == {"closed": 3, "triage": 1}
    assert ok(wf.get("admin", "/api/v1/stats", grid="c2"))["total"] == 0
    csv = wf.get("admin", "/api/v1/stats", format="csv")
    assert csv.headers["content-type"].startswith("text/csv") and "closure_rate,,0.75" in csv.text
    index = {r["code"]: r for r in ok(wf.get("admin", "/api/v1/stats/index", month="2026-11"))}
    # closure 0.75, on time 1.0, no rework → 100 × (0.4·0.75 + 0.4·1 + 0.2·1) = 90 → blue.
    assert (index["g2"]["score"], index["g2"]["color"]) == (90.0, "blue")
    assert index["g3"]["incidents"] == 0 and index["g3"]["color"] == "blue"
    index_csv = wf.get("admin", "/api/v1/stats/index", month="2026-11", format="csv").text
    assert index_csv.splitlines()[0].startswith("code,name,level")
    assert wf.get("admin", "/api/v1/stats/index", month="November").status_code == 422


def test_returned_task_is_dispatched_again_by_hand_to_another_assignee(wf: Workflow) -> None:
    wf.ingest(EVENTS, wire(event("k-return")))
    iid = incident_of(wf, "k-return")["id"]
    ok(wf.act("monitor", iid, "confirm"))
    assert wf.act("property", iid, "return").status_code == 422  # a reason is required
    inc = ok(wf.act("property", iid, "return", reason="not our car park"))
    assert (inc["state"], inc["stage"]) == ("returned", "dispatch")
    assert wf.act("monitor", iid, "dispatch", unit="nobody").status_code == 422
    # Manual override: straight to the grid worker, no unit.
    inc = ok(wf.act("monitor", iid, "dispatch", worker="wang-fang", reason="worker handles it"))
    assert (inc["state"], inc["assigned_unit"], inc["assigned_worker"]) == ("dispatched", None, "wang-fang")
    assert ok(wf.get("wang", f"/api/v1/incidents/{iid}"))["allowed_actions"] == ["accept", "return"]
    history = ok(wf.get("admin", f"/api/v1/incidents/{iid}/history"))
    assert history[-1]["payload"] == {"worker": "wang-fang", "unit": None, "override": True}


def test_operator_pushes_a_cameras_zones_to_its_edge(wf: Workflow) -> None:
    lane = {"id": "lane", "kind": "fire_lane", "polygon": [[0.1, 0.6], [0.9, 0.6], [0.9, 0.7], [0.1, 0.7]], "dwell_s": 30}
    admin = wf.login("admin")
    refused = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": [lane]}, headers=wf.login("monitor"))
    assert refused.status_code == 403

    crossing = {**lane, "polygon": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}
    bad = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": [crossing]}, headers=admin)
    assert bad.status_code == 422
    problem = bad.json()["detail"][0]  # the validation error's shape (issue 29)
    assert problem["loc"] == ["body", "zones"] and "zones[0].polygon" in problem["msg"] and "cross" in problem["msg"]

    assert wf.client.put("/api/v1/cameras/nowhere/zones", json={"zones": [lane]}, headers=admin).status_code == 404

    pushed = wf.client.put("/api/v1/cameras/street-north/zones", json={"zones": [lane]}, headers=admin)
    assert pushed.status_code == 202 and pushed.json()["edge"] == EDGE
    command = ok(wf.get("admin", f"/api/v1/commands/{pushed.json()['command_id']}"))
    assert command["name"] == "config" and command["status"] == "pending"

    camera = next(c for s in ok(wf.get("admin", "/api/v1/sites")) for e in s["edges"] for c in e["cameras"]
                  if c["id"] == "street-north")
    (zone,) = camera["zones"]
    assert zone["id"] == "lane" and zone["dwell_s"] == 30 and zone["clear_s"] == 30 and "car" in zone["labels"]
