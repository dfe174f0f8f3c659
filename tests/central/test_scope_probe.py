"""Scope cannot be probed: on every route with an id in its path, as every role, an id that exists
outside the caller's scope gets the very answer (status and body, the id aside) of one that does
not exist. The routes are read from the API document, so a new route is walked without a word here.

The workflow site: g1 (street-north, wang) and g3 (gate, chen) in different communities; chief
covers c1, monitor-c2 covers c2, unit pm-1 serves c1."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from broker.topics import event_topic, evidence_topic
from central.store.tables import CommandRow, Incident
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, SITE, T0, event, jpeg_bytes, sha, wire

ROLES = ("admin", "monitor", "wang", "chen", "property", "chief", "monitor-c2", None)  # None: no token
CELLS = {"g1": "street-north", "g3": "gate"}
# A body each route takes, so that the answer comes from the handler, not from body validation.
BODIES = {"/api/v1/incidents/{incident_id}/actions/{action}": {"reason": "probing the scope"},
          "/api/v1/incidents/{incident_id}/labels": {"boxes": []},
          "/api/v1/incidents/{incident_id}/legal-hold": {"hold": True, "reason": "probing the scope"},
          "/api/v1/incidents/{incident_id}/release-hold": {"reason": "probing the scope"},
          "/api/v1/evidence/{sha256}/holds": {"holder": "dataset:probe"},
          "/api/v1/cameras/{camera}/zones": {"zones": []}}
FIXED = {"action": "confirm", "holder": "dataset:probe", "edge": EDGE, "actuator": "door-1", "version": "1"}


def _seed(wf: Workflow) -> dict[str, dict[str, str]]:
    """Per path parameter, per grid cell, a value that exists there."""
    values: dict[str, dict[str, str]] = {"incident_id": {}, "sha256": {}, "command_id": {}, "suppression_id": {},
                                         "camera": dict(CELLS)}
    for cell, camera in CELLS.items():
        snapshot = jpeg_bytes(f"probe-{cell}")
        wf.ingest(event_topic(SITE, EDGE), wire(event(f"probe-{cell}", camera=camera, snapshot=snapshot)))
        wf.ingest(evidence_topic(SITE, EDGE, sha(snapshot)), snapshot)
        with wf.central.ctx.sessions() as s:
            incident_id = s.scalar(select(Incident.id).where(Incident.incident_key == f"probe-{cell}"))
            command_id = str(uuid.uuid4())
            s.add(CommandRow(command_id=command_id, site=SITE, edge=EDGE, incident_id=incident_id, name="recheck",
                             args={}, actor="admin", sent_at=T0, status="pending", published=False))
            s.commit()
        silence = wf.client.post("/api/v1/suppressions", headers=wf.login("admin"),
                                 json={"camera": camera, "duration_s": 3600, "reason": "probing the scope"})
        assert silence.status_code == 201, silence.text
        values["incident_id"][cell] = str(incident_id)
        values["sha256"][cell] = sha(snapshot)
        values["command_id"][cell] = command_id
        values["suppression_id"][cell] = str(silence.json()["id"])
    assert wf.client.put(f"/api/v1/evidence/{values['sha256']['g1']}/holds", headers=wf.login("admin"),
                         json={"holder": "dataset:probe"}).status_code == 200
    return values


MISSING = {"incident_id": "987654", "sha256": "f" * 64, "command_id": str(uuid.UUID(int=7)),
           "suppression_id": "987654", "camera": "no-such-camera"}


def _call(wf: Workflow, role: str | None, method: str, template: str, param: str, value: str):  # type: ignore[no-untyped-def]
    path = template.replace("{" + param + "}", value)
    for name, fixed in FIXED.items():
        path = path.replace("{" + name + "}", fixed)
    headers = wf.login(role) if role else {}
    wf.client.cookies.clear()  # the logins' session cookie would make the anonymous caller someone
    body = BODIES.get(template) if method in ("post", "put", "patch") else None
    res = wf.client.request(method.upper(), path, headers=headers, json=body, follow_redirects=False)
    return res.status_code, re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "<id>", res.text)


def test_an_id_outside_the_scope_answers_as_one_that_does_not_exist(wf: Workflow) -> None:
    values = _seed(wf)
    paths = wf.client.get("/api/openapi.json", headers=wf.login("admin")).json()["paths"]
    walked = [(template, method, param) for template, ops in paths.items() for method in ops
              for param in re.findall(r"\{(\w+)\}", template) if param in MISSING]
    assert len(walked) >= 15  # incidents, evidence, commands, silences, cameras
    compared = 0
    for role in ROLES:
        headers = wf.login(role) if role else {}
        me = wf.client.get("/api/v1/me", headers=headers)
        scope = me.json()["scope"] if me.status_code == 200 else []
        seen = {str(i["id"]) for i in wf.client.get("/api/v1/incidents", headers=headers,
                                                    params={"limit": 500}).json().get("items", [])}
        for template, method, param in walked:
            for cell, value in values[param].items():
                if param in ("incident_id", "sha256", "command_id"):  # these follow their incident
                    hidden = values["incident_id"][cell] not in seen
                else:  # cameras and their silences follow the camera's cell
                    hidden = scope is not None and cell not in scope
                if not hidden:
                    continue
                compared += 1
                outside = _call(wf, role, method, template, param, value)
                missing = _call(wf, role, method, template, param, MISSING[param])
                assert outside == missing, f"{method.upper()} {template} as {role}: {cell}'s {param} {outside} " \
                                           f"but a missing one {missing}"
    assert compared >= 50
