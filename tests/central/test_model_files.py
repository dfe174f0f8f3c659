"""Central serves model files to edges (central/api/routes_model_files.py): by sha256, with Range,
to an edge's own token only, and only the models its cameras are assigned; everything else is the
same 404. SQLite and PostgreSQL (the migration's tables), the real published model files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from broker.siteconfig import SiteConfig
from central.api.routes_model_files import RangeNotSatisfiable, parse_range
from central.auth import edge_tokens
from central.store.tables import utcnow
from models.registry import load_registry

YOLOV8N = load_registry().get("yolov8n").sha256
YOLOX = load_registry().get("yolox_nano").sha256


def _site() -> SiteConfig:
    return SiteConfig.model_validate({
        "site": "mf",
        "edges": [{"id": "e1", "cameras": [{"id": "a", "url": "rtsp://127.0.0.1/a", "model": "yolov8n"}]},
                  {"id": "e2", "cameras": [{"id": "b", "url": "rtsp://127.0.0.1/b", "model": "yolox_nano"}]}],
        "users": [{"username": "admin", "role": "admin", "password": "admin-pw"}],
    })


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Any, TestClient]]:
    from central.server import build_central

    central = build_central(_site(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False, demo=True)
    with TestClient(central.app) as client:
        yield central, client
    central.close()


def _token(central: Any, edge: str, **kwargs: Any) -> dict[str, str]:
    with central.ctx.sessions() as session:
        token = edge_tokens.mint(session, "mf", edge, actor="test", at=utcnow(), **kwargs)
    return {"Authorization": f"Bearer {token}"}


def test_an_edge_reads_its_own_models_whole_and_in_ranges_and_nothing_else(served: tuple[Any, TestClient]) -> None:
    central, client = served
    e1, e2 = _token(central, "e1"), _token(central, "e2")
    listed = client.get("/api/v1/edge/models", headers=e1)
    assert listed.status_code == 200, listed.text
    [model] = listed.json()["models"]
    assert (model["name"], model["sha256"], model["published"]) == ("yolov8n", YOLOV8N, True)
    assert model["entry"]["file"] == "yolov8n.onnx" and model["classes"]["file"] == "coco80.names"

    whole = client.get(f"/api/v1/edge/models/{YOLOV8N}", headers=e1)
    assert whole.status_code == 200 and whole.headers["etag"] == f'"{YOLOV8N}"'
    assert hashlib.sha256(whole.content).hexdigest() == YOLOV8N and len(whole.content) == model["size"]
    part = client.get(f"/api/v1/edge/models/{YOLOV8N}", headers={**e1, "Range": "bytes=1000000-"})
    assert part.status_code == 206 and part.content == whole.content[1000000:]
    assert part.headers["content-range"] == f"bytes 1000000-{model['size'] - 1}/{model['size']}"
    # A part of other bytes is never continued: If-Range with another tag gets the whole file.
    other = client.get(f"/api/v1/edge/models/{YOLOV8N}", headers={**e1, "Range": "bytes=10-", "If-Range": '"x"'})
    assert other.status_code == 200 and len(other.content) == model["size"]
    beyond = client.get(f"/api/v1/edge/models/{YOLOV8N}", headers={**e1, "Range": f"bytes={model['size']}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{model['size']}"
    names = client.get(f"/api/v1/edge/models/{model['classes']['sha256']}", headers=e1)
    assert names.status_code == 200 and b"motorcycle" in names.content

    # e2's model is registered and served to e2, and is the same 404 to e1 as a sha256 nobody has.
    assert client.get("/api/v1/edge/models", headers=e2).json()["models"][0]["sha256"] == YOLOX
    assert client.get(f"/api/v1/edge/models/{YOLOX}", headers=e2).status_code == 200
    theirs = client.get(f"/api/v1/edge/models/{YOLOX}", headers=e1)
    unknown = client.get(f"/api/v1/edge/models/{'0' * 64}", headers=e1)
    assert theirs.status_code == unknown.status_code == 404 and theirs.json() == unknown.json()


def test_only_a_live_edge_token_opens_the_model_routes(served: tuple[Any, TestClient]) -> None:
    central, client = served
    old = _token(central, "e1")
    new = _token(central, "e1")  # minting again revokes the earlier token
    kept = _token(central, "e1", revoke_others=False)
    user = client.post("/api/v1/auth/token", data={"username": "admin", "password": "admin-pw"}).json()["access_token"]
    for headers in ({}, old, {"Authorization": f"Bearer {user}"}, {"Authorization": "Bearer se_edge_guessed"}):
        answer = client.get(f"/api/v1/edge/models/{YOLOV8N}", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", headers
    assert client.get("/api/v1/edge/models", headers=new).status_code == 200
    assert client.get("/api/v1/edge/models", headers=kept).status_code == 200
    with central.ctx.sessions() as session:
        assert edge_tokens.revoke(session, "mf", "e1", at=utcnow()) == 2
        session.commit()
    assert client.get("/api/v1/edge/models", headers=new).status_code == 401


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, None), ("bytes=0-", 100, (0, 99)), ("bytes=40-", 100, (40, 99)), ("bytes=40-49", 100, (40, 49)),
    ("bytes=40-1000", 100, (40, 99)), ("bytes=-10", 100, (90, 99)), ("bytes=-1000", 100, (0, 99)),
    ("bytes=1-2,5-6", 100, None), ("items=1-2", 100, None), ("bytes=-", 100, None),
])
def test_range_headers(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-160", "bytes=-0", "bytes=50-40"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_bearer_token_is_taken_only_from_an_edge_bearer_header() -> None:
    assert edge_tokens.bearer_token("Bearer se_edge_abc") == "se_edge_abc"
    assert edge_tokens.bearer_token("bearer  se_edge_abc ") == "se_edge_abc"
    for header in (None, "", "Basic se_edge_abc", "Bearer eyJhbGciOi.jwt", "Bearer"):
        assert edge_tokens.bearer_token(header) is None
    token = edge_tokens.new_token()
    assert token.startswith("se_edge_") and len(token) > 40 and edge_tokens.token_sha256(token) != token
