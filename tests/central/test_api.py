"""The REST API through real HTTP requests (ASGI test client) on a migrated SQLite/PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from broker.payloads import Phase
from broker.topics import event_topic, evidence_topic
from central.auth.tokens import Principal, TokenIssuer
from central.server import Central, build_central
from central.store.tables import Base
from tests.central.conftest import Store
from tests.central.factories import EDGE, SITE, T0, event, jpeg_bytes, sha, site_config, wire

PASSWORDS = {"admin": "admin-pw", "monitor": "monitor-pw", "wang-fang": "wang-pw", "zhao": "zhao-pw"}


@pytest.fixture
def central(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Central]:
    monkeypatch.delenv("SHARPEYES_JWT_SECRET", raising=False)
    built = build_central(site_config(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False)
    yield built
    built.close()


@pytest.fixture
def client(central: Central) -> Iterator[TestClient]:
    with TestClient(central.app) as c:
        yield c


def _store(central: Central) -> Store:
    from central.workflow.routing import GridRouter

    return Store(central.engine, central.ctx.sessions, central.ctx.evidence, GridRouter(site_config()))


def login(client: TestClient, username: str) -> dict[str, str]:
    res = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORDS[username]})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def test_anonymous_and_bad_tokens_get_401(client: TestClient, central: Central) -> None:
    for path in ("/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/me", "/api/v1/dead-letters",
                 "/api/v1/evidence/" + "a" * 64, "/api/v1/stream", "/api/v1/no-such-thing"):
        res = client.get(path)
        assert res.status_code == 401, path
        assert res.headers["www-authenticate"] == "Bearer"
        bad = client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
        assert bad.status_code == 401, path
    forged = TokenIssuer("another-secret-that-is-long-enough-for-hs256").issue(Principal("admin", "admin", None))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = TokenIssuer(central.ctx.tokens._secret, ttl=timedelta(seconds=-1)).issue(Principal("admin", "admin", None))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_token_flow(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/token", data={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "ghost", "password": "x"}).status_code == 401
    headers = login(client, "wang-fang")
    me = client.get("/api/v1/me", headers=headers).json()
    assert me == {"username": "wang-fang", "role": "grid_worker", "worker": "wang-fang", "unit": None, "grid": [],
                  "scope": ["g1"], "demo": False}  # a grid worker covers the cells that list them
    assert client.get("/api/v1/me", headers=login(client, "admin")).json()["role"] == "admin"


def test_jwt_secret_is_generated_once_and_private(central: Central, tmp_path: Path) -> None:
    secret_file = tmp_path / "var" / "jwt_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    from central.auth.tokens import load_secret

    assert load_secret(tmp_path / "var").value == secret_file.read_text().strip()


def test_incident_list_detail_and_filters(client: TestClient, central: Central) -> None:
    store = _store(central)
    topic = event_topic(SITE, EDGE)
    blob = jpeg_bytes("api")
    store.handle(topic, wire(event("k-old", camera="street-north", started_at=T0, snapshot=blob)))
    store.handle(topic, wire(event("k-old", Phase.END, started_at=T0, observed_after_s=60, seq=2)))
    store.handle(topic, wire(event("k-new", camera="elevator-1", zone="car", started_at=T0 + timedelta(hours=1))))
    headers = login(client, "monitor")

    listed = client.get("/api/v1/incidents", headers=headers).json()
    assert listed["total"] == 2
    assert [i["incident_key"] for i in listed["items"]] == ["k-new", "k-old"]  # newest first
    old = listed["items"][1]
    assert old["condition"] == "cleared" and old["state"] == "dispatched"
    assert old["latest_snapshot_sha256"] == sha(blob)
    assert old["title"].startswith("消防通道占用 Fire lane blocked")

    def keys(**params: str) -> list[str]:
        res = client.get("/api/v1/incidents", headers=headers, params=params)
        assert res.status_code == 200, res.text
        return [i["incident_key"] for i in res.json()["items"]]

    assert keys(camera="street-north") == ["k-old"]
    assert keys(hazard="fire_lane_blocked", state="dispatched") == ["k-new", "k-old"]
    assert keys(since=(T0 + timedelta(minutes=30)).isoformat()) == ["k-new"]
    assert keys(until=(T0 + timedelta(minutes=30)).isoformat()) == ["k-old"]
    assert keys(limit="1", offset="1") == ["k-old"]
    assert client.get("/api/v1/incidents", headers=headers, params={"since": "2026-01-01T00:00:00"}).status_code == 422

    detail = client.get(f"/api/v1/incidents/{old['id']}", headers=headers).json()
    assert [e["phase"] for e in detail["events"]] == ["start", "end"]
    assert detail["evidence"] == [
        {"sha256": sha(blob), "content_type": "image/jpeg", "size": len(blob), "available": False,
         "url": f"/api/v1/evidence/{sha(blob)}", "kind": "edge"}
    ]
    assert client.get("/api/v1/incidents/999999", headers=headers).status_code == 404


def test_evidence_is_served_redacted_the_original_only_with_a_reason_and_never_by_query_token(
        client: TestClient, central: Central) -> None:
    store = _store(central)
    blob = jpeg_bytes("served")
    store.handle(event_topic(SITE, EDGE), wire(event("k-img", snapshot=blob)))
    headers = login(client, "monitor")
    assert client.get(f"/api/v1/evidence/{sha(blob)}", headers=headers).status_code == 404  # not arrived yet
    store.handle(evidence_topic(SITE, EDGE, sha(blob)), blob)

    res = client.get(f"/api/v1/evidence/{sha(blob)}", headers=headers)
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    # The event saw one car: its plate band is blurred; no face in this noise.
    assert res.headers["x-redaction"] == "faces=0 plates=1" and res.content != blob
    assert res.headers["cache-control"] == "private, no-store"
    assert client.get(f"/api/v1/evidence/{sha(blob)}", params={"original": "true"}, headers=headers).status_code == 400
    original = client.get(f"/api/v1/evidence/{sha(blob)}", params={"original": "true", "reason": "check the plate"},
                          headers=headers)
    assert original.content == blob and original.headers["cache-control"] == "private, no-store"
    token = headers["Authorization"].removeprefix("Bearer ")
    client.cookies.clear()
    # Tokens never ride in URLs (proxy and browser logs keep them): a query token is ignored.
    assert client.get(f"/api/v1/evidence/{sha(blob)}", params={"access_token": token}).status_code == 401
    # The console's HttpOnly session cookie, set at login, serves <img>; it opens no other route.
    client.cookies.set("sharpeyes_session", token)
    assert client.get(f"/api/v1/evidence/{sha(blob)}").status_code == 200
    assert client.get("/api/v1/incidents").status_code == 401
    client.cookies.clear()
    detail = client.get("/api/v1/incidents", headers=headers).json()["items"][0]
    assert client.get(f"/api/v1/incidents/{detail['id']}", headers=headers).json()["evidence"][0]["available"]


def test_grid_worker_sees_only_own_incidents(client: TestClient, central: Central) -> None:
    store = _store(central)
    topic = event_topic(SITE, EDGE)
    mine_blob, theirs_blob = jpeg_bytes("mine"), jpeg_bytes("theirs")
    store.handle(topic, wire(event("k-mine", camera="street-north", snapshot=mine_blob)))
    store.handle(topic, wire(event("k-theirs", camera="elevator-1", zone="car", snapshot=theirs_blob)))
    for blob in (mine_blob, theirs_blob):
        store.handle(evidence_topic(SITE, EDGE, sha(blob)), blob)

    admin = client.get("/api/v1/incidents", headers=login(client, "admin")).json()
    ids = {i["incident_key"]: i["id"] for i in admin["items"]}
    assert set(ids) == {"k-mine", "k-theirs"}

    wang = login(client, "wang-fang")
    listed = client.get("/api/v1/incidents", headers=wang).json()
    assert [i["incident_key"] for i in listed["items"]] == ["k-mine"] and listed["total"] == 1
    assert client.get(f"/api/v1/incidents/{ids['k-mine']}", headers=wang).status_code == 200
    assert client.get(f"/api/v1/incidents/{ids['k-theirs']}", headers=wang).status_code == 404
    assert client.get(f"/api/v1/evidence/{sha(mine_blob)}", headers=wang).status_code == 200
    assert client.get(f"/api/v1/evidence/{sha(theirs_blob)}", headers=wang).status_code == 404

    zhao = login(client, "zhao")
    assert [i["incident_key"] for i in client.get("/api/v1/incidents", headers=zhao).json()["items"]] == ["k-theirs"]


def test_dead_letters_are_for_admins(client: TestClient, central: Central) -> None:
    _store(central).handle(event_topic(SITE, EDGE), b"{broken")
    assert client.get("/api/v1/dead-letters", headers=login(client, "monitor")).status_code == 403
    body = client.get("/api/v1/dead-letters", headers=login(client, "admin")).json()
    assert body["total"] == 1
    letter = body["items"][0]
    assert letter["topic"] == event_topic(SITE, EDGE)
    assert letter["reason"].startswith("not JSON")
    assert letter["payload_preview"] == "{broken"


def test_healthz_and_web_page_need_no_login(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": True, "mqtt_connected": None, "demo": False}
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/js/main.js">' in page.text
    script = client.get("/static/js/api.js")
    assert script.status_code == 200 and "/stream" in script.text
    # Served from the package alone (tests/e2e checks every console file for outside addresses).
    for body in (page.text, script.text, client.get("/static/style.css").text):
        assert "http://" not in body and "https://" not in body and "//cdn" not in body


def test_migrations_match_the_models(central: Central) -> None:
    with central.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
