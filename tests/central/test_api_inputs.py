"""Issue 29's hand cases: inputs that gave a 500 now get a 4xx in the documented shape, and the
public Open311 list masks personal data in every free-text field."""

from __future__ import annotations

import json

import pytest

from broker.topics import event_topic
from central.api.errors import json_answer
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, G1_AREA, SITE, event, wire

HUGE = str(2**63 + 5)


def problems(res) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """The validation error's shape: a list of {loc, msg, type}."""
    assert res.status_code == 422, res.text
    detail = res.json()["detail"]
    assert isinstance(detail, list) and all({"loc", "msg", "type"} <= set(p) for p in detail), detail
    return detail


@pytest.mark.parametrize("path", [f"/api/v1/incidents/{HUGE}", f"/api/v1/incidents/{HUGE}/labels",
                                  f"/api/v1/incidents/{HUGE}/history", f"/api/v1/incidents?offset={HUGE}",
                                  f"/api/v1/dead-letters?offset={HUGE}", f"/api/v1/access-log?incident={HUGE}"])
def test_ids_and_offsets_past_the_databases_integers_are_refused(wf: Workflow, path: str) -> None:
    problems(wf.client.get(path, headers=wf.login("admin")))


def test_ids_in_bodies_and_on_writes_are_bounded_too(wf: Workflow) -> None:
    admin = wf.login("admin")
    problems(wf.client.put(f"/api/v1/incidents/{HUGE}/legal-hold", json={"hold": True, "reason": "keep it"},
                           headers=admin))
    problems(wf.client.delete(f"/api/v1/suppressions/{HUGE}", headers=admin))
    wf.ingest(event_topic(SITE, EDGE), wire(event("k-merge")))
    iid = wf.get("admin", "/api/v1/incidents").json()["items"][0]["id"]
    problems(wf.act("admin", iid, "merge", target_id=2**63 + 5, reason="duplicate"))


def test_lone_surrogates_are_refused_with_an_answer_that_can_be_sent(wf: Workflow) -> None:
    body = b'{"camera": "street-north", "duration_s": 60, "reason": "\\ud800"}'
    res = wf.client.post("/api/v1/suppressions", content=body,
                         headers={**wf.login("admin"), "content-type": "application/json"})
    assert problems(res)[0]["type"] == "string_unencodable"
    # Should a surrogate reach a validation error's echo all the same, the answer replaces it.
    echoed = json_answer(422, {"detail": [{"loc": ["query", "q"], "msg": "bad", "type": "x", "input": "a\ud800"}]})
    assert json.loads(echoed.body)["detail"][0]["input"] == "a?"
    intake = wf.client.post("/open311/v2/requests.json", content=b'{"service_code": "other", "description": "\\udc00"}',
                            headers={"content-type": "application/json"})
    assert intake.status_code == 400 and intake.json()[0]["code"] == 400


def test_json_nested_deep_is_refused_everywhere(wf: Workflow) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    intake = wf.client.post("/open311/v2/requests.json", content=deep, headers={"content-type": "application/json"})
    assert intake.status_code == 400 and "deeper" in intake.json()[0]["description"]
    res = wf.client.put("/api/v1/cameras/street-north/zones", content=deep,
                        headers={**wf.login("admin"), "content-type": "application/json"})
    assert problems(res)[0]["type"] == "json_too_deep"


def test_passwords_are_measured_in_bytes(wf: Workflow) -> None:
    res = wf.client.post("/api/v1/users", headers=wf.login("admin"),
                         json={"username": "zhang", "role": "monitor", "password": "密" * 30})  # 90 bytes
    (problem,) = problems(res)
    assert problem["loc"] == ["body", "password"] and "72 bytes" in problem["msg"]
    # At login a long password is simply wrong, not a 500.
    login = wf.client.post("/api/v1/auth/token", data={"username": "admin", "password": "密" * 100})
    assert login.status_code == 401


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01",
                                   "2026-01-01T00:00:00", "0.5"])
def test_dates_stay_in_range_and_carry_their_zone(wf: Workflow, since: str) -> None:
    (problem,) = problems(wf.get("admin", "/api/v1/incidents", since=since))
    assert problem["loc"] == ["query", "since"]


def test_handler_refusals_use_the_validation_errors_shape(wf: Workflow) -> None:
    (problem,) = problems(wf.client.post("/api/v1/suppressions", headers=wf.login("monitor"),
                                         json={"camera": "no-such-camera", "duration_s": 60, "reason": "quiet"}))
    assert problem["loc"] == ["body", "camera"] and "GET /api/v1/sites" in problem["msg"]
    (problem,) = problems(wf.get("admin", "/api/v1/stats/index", month="2026-13"))
    assert problem["loc"] == ["query", "month"]


def test_unknown_methods_get_405_with_the_paths_methods(wf: Workflow) -> None:
    res = wf.client.put("/api/v1/units", headers=wf.login("admin"))
    assert res.status_code == 405 and res.headers["allow"] == "GET"
    res = wf.client.request("OPTIONS", "/open311/v2/requests.json")
    assert res.status_code == 405 and res.headers["allow"] == "GET, POST"
    assert wf.client.put("/api/v1/auth/token").status_code == 405  # a public path: no secret
    assert wf.client.put("/api/v1/units").status_code == 401  # a private one: anonymous callers learn nothing
    assert wf.client.get("/api/v1/nowhere", headers=wf.login("admin")).status_code == 404


def test_the_public_open311_list_masks_personal_data_in_every_free_text_field(wf: Workflow) -> None:
    lon, lat = (G1_AREA[0][0] + G1_AREA[1][0]) / 2, (G1_AREA[0][1] + G1_AREA[2][1]) / 2
    wf.central.ctx.demo = True  # anonymous intake, as under --demo
    report = {"service_code": "other", "lat": str(lat), "long": str(lon),
              "address_string": "3 栋 call 13812345678 or li@example.org",
              "description": "堆物 13912345678", "media_url": "https://example.org/p.jpg?tel=13700001111"}
    posted = wf.client.post("/open311/v2/requests.json", data=report)
    assert posted.status_code == 201, posted.text
    (listed,) = wf.client.get("/open311/v2/requests.json").json()
    assert listed["address"] == "3 栋 call [phone] or [e-mail]"
    assert listed["description"] == "堆物 [phone]" and "13700001111" not in listed["media_url"]
