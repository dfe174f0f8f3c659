"""Request bodies limited before they are read, and uploads refused before they are read when the
caller has no valid token: a 300 MB anonymous upload costs central a header, not 300 MB.

A plain ASGI middleware, so it sits in front of FastAPI's form parsing (which reads the whole
body before any dependency, authentication included, runs)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from central.tokens import TokenError, TokenIssuer

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
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.encode(), v.encode()) for k, v in (extra or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
