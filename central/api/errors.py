"""One error shape: every 422 is FastAPI's validation error (``{"detail": [{"loc", "msg", "type"}]}``)
naming the key and the fix, whether pydantic or a handler found the problem; other statuses keep
``{"detail": "..."}``. Also the answers the router gives itself: 405 with the path's real ``Allow``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

Loc = Sequence[str | int]


def problem(loc: Loc, msg: str, type: str = "value_error") -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type}


def invalid(loc: Loc, msg: str, type: str = "value_error", *more: dict[str, Any]) -> HTTPException:
    """A handler's 422 in the validation error's shape: LOC names the key (("body", "camera"),
    ("query", "since")), MSG says what is wrong and how to fix it."""
    return HTTPException(422, detail=[problem(loc, msg, type), *more])


def invalid_all(problems: Iterable[dict[str, Any]]) -> HTTPException:
    return HTTPException(422, detail=list(problems))


def encodable(value: Any) -> Any:
    """VALUE with lone surrogates (which UTF-8 cannot carry) replaced and NaN or infinities (which
    JSON cannot) as null, so an answer that echoes a request can always be sent."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


def json_answer(status: int, content: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    content = jsonable_encoder(content)
    try:
        json.dumps(content, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError:  # UnicodeEncodeError included
        content = encodable(content)
    return JSONResponse(content, status_code=status, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return json_answer(422, {"detail": exc.errors()})


def _routes(app: FastAPI) -> list[tuple[re.Pattern[str], set[str], bool]]:
    """(path regex, methods, public) per path of the API document. (FastAPI nests included
    routers, so the document, not the router's list, is where every route can be found.)"""
    table: list[tuple[re.Pattern[str], set[str], bool]] | None = getattr(app.state, "route_table", None)
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                            for part in re.split(r"(\{[^}]+\})", template))
            methods = {m.upper(): op for m, op in operations.items() if m in HTTP_METHODS}
            table.append((re.compile(f"^{regex}$"), set(methods), not any(op.get("security") for op in methods.values())))
        app.state.route_table = table
    return table


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """The methods the API document declares for PATH. A path written out in full wins over a
    template that also matches it (``/edges/drift`` over ``/edges/{edge}``), as routers read them."""
    matching = [(regex, methods) for regex, methods, _ in _routes(app) if regex.match(path)]
    static = [methods for regex, methods in matching if "[^/]+" not in regex.pattern]
    return {m for methods in (static or [methods for _, methods in matching]) for m in methods}


def shadowed(app: FastAPI, request: Request) -> HTTPException | None:
    """A 405 for a request a template route caught on a path that another route writes out in full
    with other methods (PATCH /edges/drift is no edge called drift): None when the path is the
    template's own."""
    allowed = allowed_methods(app, request.url.path)
    return method_not_allowed(allowed) if request.method not in allowed else None


def is_public(app: FastAPI, path: str) -> bool:
    """Whether PATH is a route that needs no login (its existence is no secret)."""
    return any(public for regex, _, public in _routes(app) if regex.match(path))


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CATCH_ALL = "no_such_endpoint"


def method_not_allowed(methods: set[str]) -> HTTPException | None:
    if not methods:
        return None
    return HTTPException(405, detail="method not allowed here; see Allow", headers={"Allow": ", ".join(sorted(methods))})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (methods := allowed_methods(app, request.url.path)):
            # Starlette names only the first route that matched the path; a path with GET and
            # POST as two routes would say "Allow: GET" to a POST it serves.
            headers["Allow"] = ", ".join(sorted(methods))
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return json_answer(exc.status_code, {"detail": exc.detail}, headers or None)

    app.add_exception_handler(StarletteHTTPException, http_error)


# -- the OpenAPI document's error answers ------------------------------------------------------


class Problem(BaseModel):
    """Every error but 422: what is wrong, in words (a 409 of a workflow step says more, as an object)."""

    detail: str | dict[str, Any] | list[Any] = Field(description="what went wrong and what to do")


WHY = {
    400: "the request cannot be read (the body's form, a missing reason for an original)",
    401: "not logged in, or the token is invalid, expired or revoked",
    403: "the caller's role may not do this",
    404: "no such thing, or it lies outside the caller's grid scope (the same answer for both)",
    405: "this path does not serve that method (see Allow)",
    409: "the change conflicts with the current state",
    410: "the evidence was deleted under the retention policy",
    413: "the request body is too large",
    415: "the body's media type is not one this route reads",
    429: "too many requests; wait as Retry-After says",
    503: "not ready",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers to declare on a route (``responses=`` of the decorator)."""
    return {code: {"model": Problem, "description": WHY[code]} for code in codes}


def csv_answer(what: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route that answers JSON, or with ``format=csv`` text/csv."""
    return {200: {"description": f"JSON, or with format=csv {what} as text/csv",
                  "content": {"text/csv": {"schema": {"type": "string"}}}}}
