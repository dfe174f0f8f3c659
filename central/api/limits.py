"""Request bodies limited before they are read, and uploads refused before they are read when the
caller has no valid token: a 300 MB anonymous upload costs central a header, not 300 MB.

JSON bodies are checked here, for every route alike (the public Open311 intake reads its own): at
most MAX_JSON_DEPTH levels deep (10,000 levels was a RecursionError), valid UTF-8, and no string
that UTF-8 cannot carry (a lone surrogate such as "\\ud800", a 500 where it was stored or echoed),
no NaN or Infinity (not JSON). A refusal is a 422 in the validation error's shape.

A plain ASGI middleware, so it sits in front of FastAPI's form parsing (which reads the whole
body before any dependency, authentication included, runs)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from central.auth.tokens import TokenError, TokenIssuer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB, MIB = 1024, 1024 * 1024
UPLOAD_PATH = "/api/v1/uploads"
# (path prefix, most bytes); the first match wins.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    (UPLOAD_PATH, 10 * MIB + 64 * KIB),  # one photo of 10 MB and its multipart framing
    ("/open311/", 64 * KIB),  # a report is text; its photo is a media_url
    ("/api/v1/auth/", 8 * KIB),
    ("/", 1 * MIB),
)


def limit_for(path: str) -> int:
    return next(limit for prefix, limit in BODY_LIMITS if path.startswith(prefix))


# The deepest body central takes is an edge's configuration (edge, cameras, camera, zones, zone,
# polygon, point: 7 levels); 32 leaves room and stops a parser's recursion long before its limit.
MAX_JSON_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def _too_deep(body: bytes) -> bool:
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b'""', body)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def json_problem(body: bytes) -> tuple[str, str] | None:
    """(error type, message) when a JSON body must be refused before any route reads it."""
    if not body.strip():
        return None  # the route says what it needed
    if _too_deep(body):
        return "json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels; send a flatter document"
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except UnicodeDecodeError:
        return "json_invalid", "the body is not UTF-8 text; send JSON encoded as UTF-8"
    except (ValueError, RecursionError) as exc:
        return "json_invalid", f"the body is not JSON ({exc}); send a JSON document"
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "string_unencodable", ("a string holds a lone surrogate (\\ud800-\\udfff), which is no character; "
                                      "send valid Unicode text")
    return None


def _is_json(headers: dict[bytes, bytes]) -> bool:
    media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class BodyLimits:
    def __init__(self, app: ASGIApp, tokens: Callable[[], TokenIssuer]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path, headers = scope["path"], dict(scope["headers"])
        limit = limit_for(path)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _error(send, 413, f"request body over {limit} bytes")
            return
        if path == UPLOAD_PATH and not self._authorised(headers.get(b"authorization", b"")):
            await _error(send, 401, "not authenticated: log in before uploading", {"www-authenticate": "Bearer"})
            return
        if _is_json(headers):
            await self._json(scope, receive, send, limit)
            return
        seen, started, over = 0, False, False

        async def counted() -> Message:
            # Past the limit the app is told the client went away: it stops reading and answers
            # nothing, and the 413 is sent here.
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app says about the cut-off body, the answer is the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _error(send, 413, f"request body over {limit} bytes")

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Read the whole JSON body (at most LIMIT bytes), check it, then hand it to the app."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _error(send, 413, f"request body over {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        found = json_problem(body)
        if found is not None:
            kind, msg = found
            if scope["path"].startswith("/open311/"):  # GeoReport's error format, as the intake answers
                await _send(send, 400, [{"code": 400, "description": msg}])
            else:
                await _send(send, 422, {"detail": [{"loc": ["body"], "msg": msg, "type": kind}]})
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: the client's disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _authorised(self, header: bytes) -> bool:
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            self.tokens().verify(token.strip())
        except TokenError:
            return False
        return True


async def _error(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    await _send(send, status, {"detail": detail}, extra)


async def _send(send: Send, status: int, content: object, extra: dict[str, str] | None = None) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.encode(), v.encode()) for k, v in (extra or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
