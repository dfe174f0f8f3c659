"""Assemble the FastAPI application: API routes under /api/v1 and the web page at /."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from central.api import (
    errors,
    open311,
    routes_actuation,
    routes_admin,
    routes_auth,
    routes_config,
    routes_drift,
    routes_evidence,
    routes_incidents,
    routes_inventory,
    routes_model_files,
    routes_models,
    routes_ops,
    routes_workflow,
)
from central.api.context import ApiContext
from central.api.deps import TOKEN_URL, current_user_or_cookie, optional_user, unauthorized
from central.api.headers import SecurityHeaders
from central.api.limits import BodyLimits
from central.auth.tokens import Principal

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DOCS_URL, OPENAPI_URL = "/api/docs", "/api/openapi.json"


def create_app(ctx: ApiContext) -> FastAPI:
    # The docs and the schema are served by the routes below, behind login outside --demo.
    app = FastAPI(title="sharpeyes central", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    errors.install(app)

    api = APIRouter(prefix="/api/v1")
    api.include_router(routes_auth.public, tags=["auth"])
    # Every other /api/v1 route needs a user; routes add their own finer checks.
    private = APIRouter(dependencies=[Depends(current_user_or_cookie)], responses=errors.responses(401))
    private.include_router(routes_auth.private, tags=["auth"])
    private.include_router(routes_incidents.router, tags=["incidents"])
    private.include_router(routes_evidence.router, tags=["evidence"])
    private.include_router(routes_ops.router, tags=["operations"])
    private.include_router(routes_drift.router, tags=["edge configuration"])
    private.include_router(routes_workflow.router, tags=["supervision, silences, statistics"])
    private.include_router(routes_admin.router, tags=["administration"])
    private.include_router(routes_actuation.router, tags=["actuation"])
    private.include_router(routes_models.router, tags=["models"])
    private.include_router(routes_config.router, tags=["edge configuration"])
    private.include_router(routes_inventory.router, tags=["inventory"])

    api.include_router(routes_model_files.router, tags=["edge models"])  # edges, by their own tokens
    api.include_router(private)

    @api.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                   include_in_schema=False, name=errors.CATCH_ALL)
    def no_such_endpoint(path: str, request: Request,
                         principal: Annotated[Principal | None, Depends(optional_user)]) -> None:
        # The router comes here for an unknown path, and for a known path asked with a method it
        # does not serve: a 405 with the path's Allow. Anonymous callers learn nothing of the
        # private paths (401 for them all); the public ones (login) are no secret.
        allowed, public = errors.allowed_methods(app, request.url.path), errors.is_public(app, request.url.path)
        if principal is None and not public:
            raise unauthorized("not authenticated: log in at " + TOKEN_URL)
        raise errors.method_not_allowed(allowed) or HTTPException(404, detail=f"no such endpoint /api/v1/{path}")
    app.include_router(api)
    app.include_router(routes_ops.health, tags=["health"])
    app.include_router(open311.router, tags=["open311"])
    _docs(app, ctx)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_middleware(BodyLimits, tokens=lambda: ctx.tokens)
    app.add_middleware(SecurityHeaders)
    return app


def _docs(app: FastAPI, ctx: ApiContext) -> None:
    """The API's docs and OpenAPI schema: for logged-in users (the console's session cookie), or
    for anyone under --demo. They list every route and parameter, which an attacker would enjoy."""

    def reader(principal: Annotated[Principal | None, Depends(optional_user)]) -> None:
        if principal is None and not ctx.demo:
            raise HTTPException(401, detail="log in to the console first; the API docs are for its users")

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=[Depends(reader)])
    def openapi() -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        return JSONResponse(open311.with_services(schema, ctx.workflow().config.open311))

    @app.get(DOCS_URL, include_in_schema=False, dependencies=[Depends(reader)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="sharpeyes central API")
