"""Security and personal data (PIPL) in a real central: weak secrets refused, tokens revocable and
never in URLs, doors closed (throttled logins, bodies limited before they are read, Open311 keyed),
evidence redacted outside the desk with every read on the audit chain, data kept only as long as
the policy allows, and the PIPL register."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from broker.payloads import HazardKind
from broker.topics import event_topic, evidence_topic
from central.store.tables import Evidence, EvidenceHold, Incident, LoginAttempt
from central.workflow import audit
from tests.central.conftest import Workflow, make_workflow
from tests.central.factories import WF_PASSWORD, event, jpeg_bytes, sha, wire
from tests.support import PROJECT_ROOT, SHARPEYES_CLI, start_central, stop_process

EVENTS = event_topic("demo", "edge-1")


def _jpeg(path: Path) -> bytes:
    out = io.BytesIO()
    Image.open(path).convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)


def _incident(wf: Workflow, key: str, snapshot: bytes, **kw: object) -> int:
    wf.ingest(EVENTS, wire(event(key, snapshot=snapshot, **kw)))  # type: ignore[arg-type]
    wf.ingest(evidence_topic("demo", "edge-1", sha(snapshot)), snapshot)
    with wf.central.ctx.sessions() as session:  # type: ignore[attr-defined]
        return next(i.id for i in session.query(Incident).all() if i.incident_key == key)


# -- secrets policy ---------------------------------------------------------------------------------


def test_serve_refuses_default_passwords_weak_keys_and_keyless_open311(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHARPEYES_", "AWS_"))}
    env.update(SHARPEYES_VAR_DIR=str(tmp_path / "var"), SHARPEYES_JWT_SECRET="x")
    done = subprocess.run([*SHARPEYES_CLI, "central", "serve", "--config", str(PROJECT_ROOT / "configs/demo.yaml"),
                           "--no-ingest", "--database-url", f"sqlite:///{tmp_path / 'c.db'}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    # A forged admin token needs the key; a key of one byte is refused before anything is served.
    assert "SHARPEYES_JWT_SECRET: the token key is 1 bytes" in done.stderr
    env["SHARPEYES_JWT_SECRET"] = "k" * 40
    done = subprocess.run([*SHARPEYES_CLI, "central", "serve", "--config", str(PROJECT_ROOT / "configs/demo.yaml"),
                           "--no-ingest", "--database-url", f"sqlite:///{tmp_path / 'c.db'}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    for user in ("admin", "monitor", "wang-fang", "supervisor", "chief", "property"):
        assert f"user {user}: password is a known default password" in done.stderr, done.stderr
    assert "open311: intake is enabled but" in done.stderr and "--demo" in done.stderr
    assert not (tmp_path / "c.db").exists()  # refused before any migration ran


def _strong_site(tmp_path: Path, broker_port: int) -> tuple[Path, Path, dict[str, str]]:
    site = yaml.safe_load((PROJECT_ROOT / "configs/demo.yaml").read_text(encoding="utf-8"))
    site["broker"] = {"host": "127.0.0.1", "port": broker_port}
    env = {"SHARPEYES_JWT_SECRET": "s" * 48, "HOTLINE_KEY": "hotline-key-0123456789"}
    for user in site["users"]:
        var = f"PW_{user['username'].upper().replace('-', '_')}"
        user.pop("password", None)
        user["password_env"] = var
        env[var] = f"{user['username']}-long-password-{len(var)}"
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(yaml.safe_dump({"open311": {"api_key_env": "HOTLINE_KEY"}}), encoding="utf-8")
    return config, workflow, env


def test_a_properly_configured_central_starts_closed(tmp_path: Path, mosquitto, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config, workflow, env = _strong_site(tmp_path, mosquitto.port)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHARPEYES_VAR_DIR", str(tmp_path / "var"))
    central, base = start_central(["--config", str(config), "--workflow", str(workflow), "--no-ingest",
                                   "--database-url", f"sqlite:///{tmp_path / 'c.db'}"], tmp_path / "central.log",
                                  demo=False)
    try:
        page = httpx.get(base + "/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert (page.headers["x-content-type-options"], page.headers["referrer-policy"]) == ("nosniff", "no-referrer")
        assert httpx.get(base + "/api/docs").status_code == 401
        assert httpx.get(base + "/api/openapi.json").status_code == 401
        login = httpx.post(base + "/api/v1/auth/token", data={"username": "admin", "password": env["PW_ADMIN"]})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert httpx.get(base + "/api/docs", cookies=login.cookies).status_code == 200
        me = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}).json()
        assert me["demo"] is False
        # Open311 takes the configured key only.
        report = {"service_code": "other", "address_string": "3号楼 stairwell", "description": "boxes"}
        assert httpx.post(base + "/open311/v2/requests.json", data=report).status_code == 403
        assert httpx.post(base + "/open311/v2/requests.json",
                          data={**report, "api_key": env["HOTLINE_KEY"]}).status_code == 201
    finally:
        stop_process(central)
    log = (tmp_path / "central.log").read_text(encoding="utf-8", errors="replace")
    # No configured secret, and no token, ever reaches a log line.
    for secret in [*env.values(), login.json()["access_token"]]:
        assert secret not in log


# -- tokens and users -------------------------------------------------------------------------------


def test_a_token_dies_when_its_users_password_or_role_changes(wf: Workflow) -> None:
    admin = wf.login("admin")
    made = wf.client.post("/api/v1/users", json={"username": "temp-monitor", "role": "monitor",  # type: ignore[attr-defined]
                                                 "password": "first-password-1"}, headers=admin)
    assert made.status_code == 201 and made.json()["managed_by"] == "api"

    def token(password: str) -> dict[str, str]:
        res = wf.client.post("/api/v1/auth/token", data={"username": "temp-monitor", "password": password})  # type: ignore[attr-defined]
        assert res.status_code == 200, res.text
        return {"Authorization": f"Bearer {res.json()['access_token']}"}

    old = token("first-password-1")
    assert wf.client.get("/api/v1/me", headers=old).status_code == 200  # type: ignore[attr-defined]
    assert wf.client.patch("/api/v1/users/temp-monitor", json={"password": "second-password-2"},  # type: ignore[attr-defined]
                           headers=admin).status_code == 200
    revoked = wf.client.get("/api/v1/me", headers=old)  # type: ignore[attr-defined]
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    new = token("second-password-2")
    assert wf.client.patch("/api/v1/users/temp-monitor", json={"role": "supervisor"}, headers=admin).status_code == 200  # type: ignore[attr-defined]
    assert wf.client.get("/api/v1/me", headers=new).status_code == 401  # type: ignore[attr-defined]
    # Users of the site file belong to it: the API says so instead of an edit undone at the next start.
    refused = wf.client.patch("/api/v1/users/wang", json={"role": "admin"}, headers=admin)  # type: ignore[attr-defined]
    assert refused.status_code == 409 and "site file" in refused.json()["detail"]
    short = wf.client.post("/api/v1/users", json={"username": "x-short", "role": "monitor", "password": "short-pw"},  # type: ignore[attr-defined]
                           headers=admin)
    assert short.status_code == 422


def test_the_site_file_revokes_tokens_of_users_it_changes(database_url: str, tmp_path: Path) -> None:
    from central.auth.tokens import Principal
    from central.auth.users import sync_users
    from central.server import build_central
    from tests.central.factories import workflow_site

    built = build_central(workflow_site(), database_url, tmp_path / "ev", tmp_path / "var", ingest=False)
    try:
        from sqlalchemy import select

        from central.store.tables import User

        with built.ctx.sessions() as session:
            before = session.scalar(select(User).where(User.username == "wang"))
            assert before is not None
            version = before.token_version
            issued = built.ctx.tokens.issue(Principal("wang", "grid_worker", "wang-fang", version))
            users = [u.model_copy(update={"password": "a-brand-new-password"}) if u.username == "wang" else u
                     for u in workflow_site().users]
            sync_users(session, users)
            assert session.scalar(select(User.token_version).where(User.username == "wang")) == version + 1
        assert built.ctx.tokens.verify(issued).version == version  # still signed, but an old version:
        from fastapi.testclient import TestClient

        with TestClient(built.app) as client:
            assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued}"}).status_code == 401
    finally:
        built.close()


def test_logins_are_throttled_per_user_and_every_failure_is_recorded(wf: Workflow) -> None:
    client = wf.client
    for _ in range(5):
        assert client.post("/api/v1/auth/token", data={"username": "monitor", "password": "guess"}).status_code == 401  # type: ignore[attr-defined]
    locked = client.post("/api/v1/auth/token", data={"username": "monitor", "password": WF_PASSWORD})  # type: ignore[attr-defined]
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0  # even the right password
    assert client.post("/api/v1/auth/token", data={"username": "admin", "password": WF_PASSWORD}).status_code == 200  # type: ignore[attr-defined]
    with wf.central.ctx.sessions() as session:  # type: ignore[attr-defined]
        failures = session.query(LoginAttempt).filter_by(username="monitor", ok=False).count()
    assert failures == 5


def test_bodies_are_limited_before_they_are_read_and_uploads_need_a_token_first(wf: Workflow) -> None:
    client = wf.client
    anonymous = client.post("/api/v1/uploads", files={"file": ("p.jpg", jpeg_bytes("anon"), "image/jpeg")})  # type: ignore[attr-defined]
    assert anonymous.status_code == 401
    huge = client.post("/api/v1/uploads", content=b"\0" * (11 * 1024 * 1024),  # type: ignore[attr-defined]
                       headers={**wf.login("wang"), "content-type": "multipart/form-data; boundary=b"})
    assert huge.status_code == 413
    text = client.post("/api/v1/uploads", files={"file": ("p.jpg", b"GIF89a not a jpeg", "image/jpeg")},  # type: ignore[attr-defined]
                       headers=wf.login("wang"))
    assert text.status_code == 415
    big_login = client.post("/api/v1/auth/token", content=b"username=a&password=" + b"x" * 9000,  # type: ignore[attr-defined]
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert big_login.status_code == 413


def test_a_worker_can_neither_attach_nor_read_another_grids_evidence(wf: Workflow) -> None:
    snapshot = jpeg_bytes("g1-evidence")
    # An occupancy alarm at the gate goes to its grid worker, chen (fire lanes go to the property unit).
    mine = _incident(wf, "k-g3", jpeg_bytes("g3-evidence"), camera="gate", hazard=HazardKind.ZONE_OCCUPANCY)
    theirs_sha = sha(snapshot)
    _incident(wf, "k-g1", snapshot)
    assert wf.get("chen", f"/api/v1/evidence/{theirs_sha}").status_code == 404
    assert wf.act("monitor", mine, "confirm").status_code == 200
    assert wf.act("chen", mine, "accept").status_code == 200
    attached = wf.act("chen", mine, "feedback", note="done", photos=[theirs_sha])
    assert attached.status_code == 422 and "not one you uploaded" in attached.text
    assert wf.get("chen", f"/api/v1/evidence/{theirs_sha}").status_code == 404
    # Nor by uploading the same bytes to make them "his".
    again = wf.client.post("/api/v1/uploads", files={"file": ("x.jpg", snapshot, "image/jpeg")},  # type: ignore[attr-defined]
                           headers=wf.login("chen"))
    assert again.status_code == 409


# -- redaction and the access log -------------------------------------------------------------------


def test_faces_are_blurred_outside_the_desk_and_every_read_is_on_the_audit_chain(wf: Workflow, shared_media: Path) -> None:
    from central.evidence.redaction import FaceDetector
    from models.registry import resolve_weight

    photo = _jpeg(shared_media / "zidane.jpg")  # two faces, as a camera snapshot would show them
    iid = _incident(wf, "k-faces", photo)
    faces = FaceDetector(resolve_weight("centerface")).detect(np.asarray(Image.open(io.BytesIO(photo)).convert("RGB")))
    assert len(faces) == 2
    assert wf.act("monitor", iid, "confirm").status_code == 200

    seen = wf.get("wang", f"/api/v1/evidence/{sha(photo)}")
    assert seen.status_code == 200 and seen.headers["x-redaction"].startswith("faces=2")
    original, redacted = _pixels(photo), _pixels(seen.content)
    for x1, y1, x2, y2 in faces:
        region = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
        # The face is unrecognisable: its detail is gone (pixelated and blurred), not a JPEG's noise.
        assert np.abs(original[region] - redacted[region]).mean() > 8
        def detail(image: np.ndarray, region: tuple[slice, slice] = region) -> float:  # fine-grained edges
            return float(np.abs(np.diff(image[region], axis=1)).mean())

        assert detail(redacted) < 0.3 * detail(original)
    assert np.abs(original[:60, :200] - redacted[:60, :200]).mean() < 4  # elsewhere the picture is as it was

    assert wf.get("wang", f"/api/v1/evidence/{sha(photo)}", original="true", reason="curious").status_code == 403
    assert wf.get("monitor", f"/api/v1/evidence/{sha(photo)}", original="true").status_code == 400
    assert wf.get("monitor", f"/api/v1/evidence/{sha(photo)}", original="true",
                  reason="identify the rider for the property office").content == photo

    reads = wf.get("supervisor", "/api/v1/access-log", incident=iid).json()
    assert [(r["username"], r["role"], r["variant"], r["reason"]) for r in reads] == [
        ("monitor", "monitor", "original", "identify the rider for the property office"),
        ("wang", "grid_worker", "redacted", None)]
    assert all(r["sha256"] == sha(photo) and r["address"] for r in reads)
    csv_text = wf.get("admin", "/api/v1/access-log", format="csv").text
    assert csv_text.splitlines()[0].startswith("at,incident_id,username,role,sha256,variant,reason")
    assert wf.get("wang", "/api/v1/access-log").status_code == 403
    assert len(wf.get("wang", f"/api/v1/incidents/{iid}/reads").json()) == 2  # "who looked", on the incident page
    with wf.central.ctx.sessions() as session:  # type: ignore[attr-defined]
        count, breaks = audit.verify(session, iid)
    assert breaks == [] and count >= 4


def test_redaction_fails_closed(tmp_path: Path) -> None:
    from central.evidence.redaction import Redactor

    broken = tmp_path / "centerface.onnx"
    broken.write_bytes(b"not a network")
    photo = jpeg_bytes("closed")
    result = Redactor(broken).redact(sha(photo), photo)
    assert result.failed and result.data != photo and result.data.startswith(b"\xff\xd8")


# -- retention --------------------------------------------------------------------------------------


@pytest.fixture
def retention_wf(database_url: str, tmp_path: Path) -> Iterator[Workflow]:
    yield from make_workflow(database_url, tmp_path)


def test_the_purge_deletes_exactly_what_the_policy_says(retention_wf: Workflow, tmp_path: Path) -> None:
    from central.evidence import retention

    wf = retention_wf
    blobs = {name: jpeg_bytes(f"ret-{name}") for name in ("dismissed", "fixed", "held", "dataset", "open")}
    # One zone each: episodes of one camera, zone and hazard within the merge window become one incident.
    ids = {name: _incident(wf, f"k-{name}", blob, camera="gate", zone=f"z-{name}") for name, blob in blobs.items()}
    for name in ("dismissed", "held", "dataset"):
        assert wf.act("monitor", ids[name], "dismiss", reason="a shadow").status_code == 200
    assert wf.act("admin", ids["fixed"], "close", reason="fixed on site").status_code == 200
    assert wf.client.put(f"/api/v1/incidents/{ids['held']}/legal-hold", json={"hold": True, "reason": "court case 12"},  # type: ignore[attr-defined]
                         headers=wf.login("supervisor")).status_code == 200
    assert wf.client.put(f"/api/v1/evidence/{sha(blobs['dataset'])}/holds", json={"holder": "dataset:ebike-v2"},  # type: ignore[attr-defined]
                         headers=wf.login("admin")).status_code == 200
    upload = wf.client.post("/api/v1/uploads", files={"file": ("u.jpg", jpeg_bytes("ret-upload"), "image/jpeg")},  # type: ignore[attr-defined]
                            headers=wf.login("chen")).json()["sha256"]

    ctx = wf.central.ctx  # type: ignore[attr-defined]
    with ctx.sessions() as session:  # uploads are stamped by the wall clock; this test runs on the workflow's
        session.get(Evidence, upload).received_at = wf.clock.now()  # type: ignore[attr-defined,union-attr]
        session.commit()
    policy = ctx.workflow().config.retention
    later = wf.clock.now() + timedelta(days=8)  # type: ignore[attr-defined]
    with ctx.sessions() as session:
        purge = retention.plan(session, policy, later)
        assert {i.sha256 for i in purge.items} == {sha(blobs["dismissed"]), upload}
        assert retention.apply(session, ctx.evidence, purge, later) == 2
    assert ctx.evidence.read(sha(blobs["dismissed"])) is None and ctx.evidence.read(upload) is None
    for name in ("fixed", "held", "dataset", "open"):
        assert ctx.evidence.read(sha(blobs[name])) == blobs[name]
    gone = wf.get("monitor", f"/api/v1/evidence/{sha(blobs['dismissed'])}", original="true", reason="look back")
    assert gone.status_code == 410
    with ctx.sessions() as session:
        assert session.get(Evidence, sha(blobs["dismissed"])).purged_at is not None
        assert session.query(EvidenceHold).count() == 1
        _, breaks = audit.verify(session)
        assert breaks == []
        purged = [r for r in wf.get("admin", f"/api/v1/incidents/{ids['dismissed']}/history").json()
                  if r["action"] == "evidence_purged"]
    assert len(purged) == 1 and purged[0]["payload"]["sha256"] == sha(blobs["dismissed"])
    # Half a year on, the handled incident's evidence goes too; the held ones stay.
    with ctx.sessions() as session:
        purge = retention.plan(session, policy, later + timedelta(days=180))
    assert {i.sha256 for i in purge.items} == {sha(blobs["fixed"])}


def test_retention_dry_run_lists_and_deletes_nothing(tmp_path: Path) -> None:
    done = subprocess.run([*SHARPEYES_CLI, "central", "retention", "--dry-run", "--database-url",
                           f"sqlite:///{tmp_path / 'c.db'}", "--evidence-dir", str(tmp_path / "ev")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "would delete 0 blob(s)" in done.stdout


# -- PIPL register ----------------------------------------------------------------------------------


def test_pipl_register_lists_each_camera_and_its_gaps(wf: Workflow) -> None:
    rows = wf.get("admin", "/api/v1/pipl-register").json()
    assert {r["camera"] for r in rows} == {"street-north", "elevator-1", "gate"}
    assert all("no privacy record" in r["gaps"] for r in rows)
    assert all("closed 180 d" in r["retention"] or r["retention"] == "no zones: nothing kept" for r in rows)
    text = wf.get("supervisor", "/api/v1/pipl-register", format="csv").text
    assert text.splitlines()[0] == "site,edge,camera,grid_cell,hazards,purpose,legal_basis,signage,assessed,retention,gaps"
    assert wf.get("wang", "/api/v1/pipl-register").status_code == 403
