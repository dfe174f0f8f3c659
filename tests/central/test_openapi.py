"""The console's API client against the OpenAPI document: every call it makes names a route and
method the API declares, and every JSON route declares what it answers (a response model)."""

from __future__ import annotations

import re
from pathlib import Path

from central.api.app import create_app
from central.api.context import ApiContext
from central.auth.tokens import TokenIssuer, TokenKey
from central.evidence.store import EvidenceStore
from central.store.changes import ChangeFeed
from tests.support import PROJECT_ROOT

CLIENT = PROJECT_ROOT / "central" / "web" / "js" / "api.js"
# Routes that answer something other than one JSON shape: files, streams, CSV-or-JSON exports, Open311's own
# format, redirects and the metrics exposition.
NOT_JSON = {"/api/v1/evidence/{sha256}", "/api/v1/stream", "/api/v1/access-log", "/api/v1/pipl-register",
            "/api/v1/cameras/{camera}/snapshot", "/api/v1/auth/logout", "/api/v1/edge/models/{sha256}"}


def _openapi(tmp_path: Path) -> dict:
    from sqlalchemy.orm import sessionmaker

    ctx = ApiContext(sessions=sessionmaker(), evidence=EvidenceStore(tmp_path), tokens=TokenIssuer(TokenKey("k" * 32, "a test key")),
                     feed=ChangeFeed(), demo=True)
    return create_app(ctx).openapi()


def _client_calls() -> set[tuple[str, str]]:
    calls = set()
    for method, path in re.findall(r'call\("([A-Z]+)",\s*[`"]([^`"]+)[`"]', CLIENT.read_text(encoding="utf-8")):
        path = re.sub(r"\$\{query\([^}]*\)\}\)?$", "", path)  # a query string is no part of the route
        path = re.sub(r"\$\{query\([^`]*", "", path)
        calls.add((method.lower(), "/api/v1" + re.sub(r"\$\{[^}]+\}", "{}", path)))
    return calls


def test_every_call_of_the_console_is_a_declared_route(tmp_path: Path) -> None:
    paths = _openapi(tmp_path)["paths"]
    declared = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for p, ops in paths.items() for m in ops}
    calls = _client_calls()
    assert len(calls) >= 20
    assert sorted(calls - declared) == []


def _untyped(schema: dict) -> bool:
    """A bare object (a dict return), a list of them, or nothing at all."""
    if "$ref" in schema or "anyOf" in schema:
        return False
    if schema.get("type") == "array":
        return _untyped(schema.get("items", {}))
    return not schema.get("properties") and schema.get("type") in (None, "object")


def test_every_json_route_declares_its_answer(tmp_path: Path) -> None:
    untyped = []
    for path, ops in _openapi(tmp_path)["paths"].items():
        if not path.startswith("/api/v1") or path in NOT_JSON:
            continue
        for method, op in ops.items():
            for code, response in op.get("responses", {}).items():
                if not code.startswith("2") or code == "204":
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if _untyped(schema):
                    untyped.append(f"{method.upper()} {path}")
    assert untyped == []
