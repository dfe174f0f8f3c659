"""Model files for edges, over HTTP(S): ``GET /api/v1/edge/models`` (what this edge's cameras are
assigned, with each file's sha256 and size) and ``GET /api/v1/edge/models/{sha256}`` (the bytes,
resumable with a ``Range`` request).

The caller is an edge, not a user: it sends the token central minted for it (``sharpeyes central
edge-token EDGE``; central/auth/edge_tokens.py). It may read only the files of the models central's
configuration gives its own cameras; any other sha256, known or not, is the same 404, so the scope
cannot be probed. The edge checks every file against its sha256 before it uses it (edge/model_fetch.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from central.api.deps import Ctx, DbSession
from central.api.errors import responses
from central.auth import edge_tokens
from central.evidence.store import EvidenceStore
from central.fleet.model_artifacts import ArtifactUnavailable, assigned_models, manifest_entry, readable_blob, register

log = logging.getLogger("central.models")
router = APIRouter()
CHUNK = 1 << 20
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range [start, end] (inclusive) a ``Range`` header asks of a SIZE-byte file; None to
    send it whole (no header, another unit, several ranges: RFC 9110 lets a server ignore those).
    RangeNotSatisfiable when it starts beyond the end."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, end


def calling_edge(session: DbSession, ctx: Ctx,
                 authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> edge_tokens.EdgeIdentity:
    identity = edge_tokens.verify(session, edge_tokens.bearer_token(authorization))
    if identity is None or ctx.site is None or identity.site != ctx.site.site:
        raise HTTPException(401, detail="an edge's token is needed (sharpeyes central edge-token EDGE)",
                            headers={"WWW-Authenticate": "Bearer"})
    return identity


Edge = Annotated[edge_tokens.EdgeIdentity, Depends(calling_edge)]


class ClassFileOut(BaseModel):
    file: str
    sha256: str
    size: int


class EdgeModelOut(BaseModel):
    name: str
    sha256: str
    size: int
    published: bool = Field(description="in models/registry.yaml: the edge's registry knows it by name already")
    entry: dict[str, Any] = Field(description="the registry entry the edge writes into its model store")
    classes: ClassFileOut


class EdgeModelsOut(BaseModel):
    edge: str
    models: list[EdgeModelOut]
    problems: list[str] = Field(description="assigned models central cannot serve, with the reason")


@router.get("/edge/models", response_model=EdgeModelsOut, responses=responses(401))
def edge_models(session: DbSession, ctx: Ctx, edge: Edge) -> dict[str, Any]:
    """The models central assigns to the calling edge's cameras: each one's registry entry, and the
    sha256 and size of its weights and class-names file (fetch them by sha256)."""
    now = ctx.workflow().clock.now()
    models, problems = [], []
    for name in sorted(assigned_models(session, ctx.site, edge.edge)):
        try:
            models.append(manifest_entry(register(session, ctx.evidence, name, actor=f"edge:{edge.edge}", at=now)))
        except ArtifactUnavailable as exc:
            problems.append(str(exc))
    session.commit()
    return {"edge": edge.edge, "models": models, "problems": problems}


FILE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "the whole file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "the range asked for (Range: bytes=N-)",
          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    **responses(401, 404), 416: {"description": "the range starts beyond the end of the file"},
}


@router.get("/edge/models/{sha256}", response_class=Response, responses=FILE_ANSWER)
def edge_model_file(sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], request: Request, session: DbSession,
                    ctx: Ctx, edge: Edge) -> Response:
    """A model file (weights or class names) of a model assigned to one of the calling edge's
    cameras, by sha256; ``Range: bytes=N-`` resumes an interrupted download (206)."""
    blob = readable_blob(session, sha256, assigned_models(session, ctx.site, edge.edge))
    if blob is None or not ctx.evidence.exists(sha256):
        raise HTTPException(404, detail="no such model file for this edge")
    headers = {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes", "Cache-Control": "private, no-transform"}
    asked = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != headers["ETag"]:
        asked = None  # the part the edge holds is of another file: send this one whole
    try:
        span = parse_range(asked, blob.size)
    except RangeNotSatisfiable:
        raise HTTPException(416, detail=f"the file has {blob.size} bytes",
                            headers={"Content-Range": f"bytes */{blob.size}"}) from None
    start, end = span if span is not None else (0, blob.size - 1)
    log.info("edge %s fetches %s (%s)", edge.edge, sha256, f"Range: {asked}" if span else "whole")
    headers["Content-Length"] = str(end - start + 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    code = 206 if span is not None else 200
    if isinstance(ctx.evidence, EvidenceStore):
        return StreamingResponse(_file_chunks(ctx.evidence, sha256, start, end), status_code=code, headers=headers,
                                 media_type="application/octet-stream")
    # Other backends (S3) hand over the whole object; a model is tens of MB, read once per request.
    data = ctx.evidence.read(sha256)
    if data is None:
        raise HTTPException(404, detail="no such model file for this edge")
    return Response(data[start:end + 1], status_code=code, headers=headers, media_type="application/octet-stream")


def _file_chunks(store: EvidenceStore, sha256: str, start: int, end: int) -> Iterator[bytes]:
    with store.path_for(sha256).open("rb") as fh:
        fh.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
