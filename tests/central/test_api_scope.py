"""Role and grid scope on the API's non-incident routes: sites, units, camera snapshots, commands,
silences, users, uploads and dead letters. In scope: 200; outside: refused and logged on
``central.access`` (403, or 404 where a read hides that the thing exists).

The workflow site: s1 ⊃ c1 ⊃ {g1: street-north, wang; g2: elevator-1, li}, s1 ⊃ c2 ⊃ {g3: gate,
chen}; chief covers c1, monitor-c2 covers c2; unit pm-1 serves c1, pm-2 serves c2.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from broker.topics import event_topic, evidence_topic
from central.store.tables import CommandRow, Incident
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, SITE, T0, WF_PASSWORD, event, jpeg_bytes, sha, wire

EVENTS = event_topic(SITE, EDGE)
Access = pytest.LogCaptureFixture  # caplog, set to catch refusals on central.access


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> Iterator[Access]:
    caplog.set_level(logging.WARNING, logger="central.access")
    yield caplog


def refused(access: Access, res, code: int, user: str) -> None:  # type: ignore[no-untyped-def]
    """The request got ``code`` and exactly one refusal of ``user`` was logged for it."""
    assert res.status_code == code, res.text
    logged = [r.getMessage() for r in access.records if r.name == "central.access"]
    assert len(logged) == 1 and logged[0].startswith(f"refused {user} ("), logged
    access.clear()


def allowed(access: Access, res, code: int = 200):  # type: ignore[no-untyped-def]
    assert res.status_code == code, res.text
    assert not [r for r in access.records if r.name == "central.access"]
    return res.json() if code == 200 else res


def cameras(sites: list[dict]) -> set[str]:
    return {c["id"] for s in sites for e in s["edges"] for c in e["cameras"]}


def test_sites_are_for_desk_roles_cut_to_the_cameras_in_their_scope(wf: Workflow, access: Access) -> None:
    assert cameras(allowed(access, wf.get("admin", "/api/v1/sites"))) == {"street-north", "elevator-1", "gate"}
    assert cameras(allowed(access, wf.get("supervisor", "/api/v1/sites"))) == {"street-north", "elevator-1", "gate"}
    assert cameras(allowed(access, wf.get("chief", "/api/v1/sites"))) == {"street-north", "elevator-1"}
    assert cameras(allowed(access, wf.get("monitor-c2", "/api/v1/sites"))) == {"gate"}
    refused(access, wf.get("wang", "/api/v1/sites"), 403, "wang")
    refused(access, wf.get("property", "/api/v1/sites"), 403, "property")


def test_units_are_those_serving_the_callers_scope(wf: Workflow, access: Access) -> None:
    def ids(user: str) -> set[str]:
        return {u["id"] for u in allowed(access, wf.get(user, "/api/v1/units"))}

    assert ids("monitor") == ids("admin") == {"pm-1", "pm-2"}
    assert ids("chief") == {"pm-1"}
    assert ids("monitor-c2") == {"pm-2"}
    refused(access, wf.get("li", "/api/v1/units"), 403, "li")
    refused(access, wf.get("other-unit", "/api/v1/units"), 403, "other-unit")


def test_camera_snapshot_only_where_the_scope_covers_the_cameras_cell(wf: Workflow, access: Access) -> None:
    snapshot = jpeg_bytes("camera-snapshot")
    wf.ingest(EVENTS, wire(event("k-snap", camera="street-north", snapshot=snapshot)))
    wf.ingest(evidence_topic(SITE, EDGE, sha(snapshot)), snapshot)
    access.clear()

    def snap(user: str, camera: str = "street-north"):  # type: ignore[no-untyped-def]
        return wf.client.get(f"/api/v1/cameras/{camera}/snapshot", headers=wf.login(user), follow_redirects=False)

    for user in ("admin", "monitor", "chief"):
        res = allowed(access, snap(user), 307)
        assert res.headers["location"] == f"/api/v1/evidence/{sha(snapshot)}"
    refused(access, snap("monitor-c2"), 404, "monitor-c2")  # g1 is outside c2: as if there were none
    refused(access, snap("wang"), 403, "wang")  # grid workers read their tasks, not cameras
    # A camera of their own without a snapshot, and one that does not exist: plain 404s.
    allowed(access, snap("monitor-c2", "gate"), 404)
    allowed(access, snap("monitor-c2", "nowhere"), 404)


def _command(wf: Workflow, edge: str, incident_id: int | None = None) -> str:
    command_id = str(uuid.uuid4())
    with wf.central.ctx.sessions() as s:
        s.add(CommandRow(command_id=command_id, site=SITE, edge=edge, incident_id=incident_id,
                         name="recheck" if incident_id else "config", args={}, actor="admin", sent_at=T0,
                         status="pending", published=False))
        s.commit()
    return command_id


def test_commands_follow_their_incident_or_their_edge(wf: Workflow, access: Access) -> None:
    wf.ingest(EVENTS, wire(event("k-cmd", camera="street-north")))
    with wf.central.ctx.sessions() as s:
        incident_id = s.scalar(select(Incident.id).where(Incident.incident_key == "k-cmd"))
    recheck = _command(wf, EDGE, incident_id)
    access.clear()
    # A recheck is read by whoever sees its incident (g1).
    for user in ("admin", "monitor", "chief", "wang"):
        assert allowed(access, wf.get(user, f"/api/v1/commands/{recheck}"))["incident_id"] == incident_id
    refused(access, wf.get("monitor-c2", f"/api/v1/commands/{recheck}"), 404, "monitor-c2")
    refused(access, wf.get("chen", f"/api/v1/commands/{recheck}"), 404, "chen")
    refused(access, wf.get("property", f"/api/v1/commands/{recheck}"), 404, "property")

    # An edge command: desk roles whose scope reaches one of the edge's cameras.
    config = _command(wf, EDGE)
    for user in ("admin", "monitor", "chief", "monitor-c2"):
        assert allowed(access, wf.get(user, f"/api/v1/commands/{config}"))["edge"] == EDGE
    refused(access, wf.get("wang", f"/api/v1/commands/{config}"), 404, "wang")
    elsewhere = _command(wf, "edge-not-here")  # no camera of this site: site-wide callers only
    allowed(access, wf.get("monitor", f"/api/v1/commands/{elsewhere}"))
    refused(access, wf.get("chief", f"/api/v1/commands/{elsewhere}"), 404, "chief")
    allowed(access, wf.get("admin", f"/api/v1/commands/{uuid.uuid4()}"), 404)


def test_silences_act_and_list_only_on_cameras_in_scope(wf: Workflow, access: Access) -> None:
    def silence(user: str, camera: str):  # type: ignore[no-untyped-def]
        return wf.client.post("/api/v1/suppressions", json={"camera": camera, "duration_s": 600, "reason": "works"},
                              headers=wf.login(user))

    north = allowed(access, silence("monitor", "street-north"), 201).json()["id"]
    # A camera outside the scope is answered like one that does not exist (issue 29): 422 naming the key.
    refused(access, silence("monitor-c2", "street-north"), 422, "monitor-c2")
    assert silence("monitor", "nowhere").json()["detail"][0]["loc"] == ["body", "camera"]
    gate = allowed(access, silence("monitor-c2", "gate"), 201).json()["id"]

    def listed(user: str) -> set[int]:
        return {s["id"] for s in allowed(access, wf.get(user, "/api/v1/suppressions"))}

    assert listed("monitor") == listed("supervisor") == {north, gate}
    assert listed("monitor-c2") == {gate}
    assert listed("chief") == {north}
    refused(access, wf.get("wang", "/api/v1/suppressions"), 403, "wang")

    refused(access, wf.client.delete(f"/api/v1/suppressions/{north}", headers=wf.login("monitor-c2")), 404,
            "monitor-c2")  # as for a silence that does not exist (issue 29)
    allowed(access, wf.client.delete(f"/api/v1/suppressions/{gate}", headers=wf.login("monitor-c2")), 204)
    assert listed("monitor") == {north}


def test_a_supervisor_of_a_subtree_lists_the_users_working_in_it(wf: Workflow, access: Access) -> None:
    added = wf.client.post("/api/v1/users", json={"username": "sup-c2", "role": "supervisor", "password": WF_PASSWORD,
                                                  "grid": ["c2"]}, headers=wf.login("admin"))
    assert added.status_code == 201, added.text
    everyone = {u["username"] for u in allowed(access, wf.get("supervisor", "/api/v1/users"))}
    assert {"admin", "monitor", "chief", "wang", "property", "sup-c2"} <= everyone
    # c2's monitor, its cell's worker, the unit serving c2 and the supervisor; no site-wide users.
    assert {u["username"] for u in allowed(access, wf.get("sup-c2", "/api/v1/users"))} == {
        "monitor-c2", "chen", "other-unit", "sup-c2"}
    refused(access, wf.get("chief", "/api/v1/users"), 403, "chief")


def test_uploads_are_for_those_who_give_feedback(wf: Workflow, access: Access) -> None:
    def upload(user: str):  # type: ignore[no-untyped-def]
        return wf.client.post("/api/v1/uploads", files={"file": ("p.jpg", jpeg_bytes(user), "image/jpeg")},
                              headers=wf.login(user))

    for user in ("wang", "property", "admin"):
        allowed(access, upload(user), 201)
    refused(access, upload("monitor"), 403, "monitor")
    refused(access, upload("supervisor"), 403, "supervisor")


def test_dead_letters_refusal_is_logged(wf: Workflow, access: Access) -> None:
    allowed(access, wf.get("admin", "/api/v1/dead-letters"))
    refused(access, wf.get("monitor", "/api/v1/dead-letters"), 403, "monitor")
