"""Assemble the FastAPI application: API routes under /api/v1 and the web page at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from central.api import open311, routes_admin, routes_auth, routes_incidents, routes_ops, routes_workflow
from central.api.context import ApiContext
from central.api.deps import current_user_or_query

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="sharpeyes central", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.ctx = ctx

    api = APIRouter(prefix="/api/v1")
    api.include_router(routes_auth.public)
    # Every other /api/v1 route needs a user; routes add their own finer checks.
    private = APIRouter(dependencies=[Depends(current_user_or_query)])
    private.include_router(routes_auth.private)
    private.include_router(routes_incidents.router)
    private.include_router(routes_ops.router)
    private.include_router(routes_workflow.router)
    private.include_router(routes_admin.router)

    @private.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def not_found(path: str) -> None:
        # Reached only after authentication, so anonymous callers learn nothing about paths.
        raise HTTPException(404, detail=f"no such endpoint /api/v1/{path}")

    api.include_router(private)
    app.include_router(api)
    app.include_router(routes_ops.health)
    app.include_router(open311.router)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app
