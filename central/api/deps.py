"""Dependencies: the request's database session and who is asking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.api.context import ApiContext
from central.auth.tokens import Principal, TokenError
from central.store.tables import User
from central.workflow.grid import scope_for
from central.workflow.rules import Actor

access_log = logging.getLogger("central.access")

TOKEN_URL = "/api/v1/auth/token"
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    ctx.refresh_site()  # once per request (FastAPI caches it): a change made by another replica shows at once
    return ctx


def get_session(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


# The console's session cookie: set at login beside the bearer token, HttpOnly (scripts cannot
# read it) and SameSite=Strict (other sites' pages cannot send it). It is accepted only where a
# browser cannot send a header (<img> evidence, EventSource) and only for reads, so it opens no
# door to cross-site writes; tokens never travel in a URL, where proxies and histories keep them.
SESSION_COOKIE = "sharpeyes_session"
COOKIE_PATHS = ("/api/v1/evidence/", "/api/v1/stream", "/api/v1/pipl-register", "/api/v1/access-log", "/api/docs",
                "/api/openapi.json")


def _principal(token: str | None, ctx: ApiContext, session: Session) -> Principal:
    if not token:
        raise unauthorized("not authenticated: log in at " + TOKEN_URL)
    try:
        claimed = ctx.tokens.verify(token)
    except TokenError as exc:
        raise unauthorized(f"invalid token: {exc}") from None
    # Role and worker come from the database, so a changed or removed user takes effect at once.
    user = session.scalar(select(User).where(User.username == claimed.username))
    if user is None or not user.active:
        raise unauthorized("user no longer exists or is disabled")
    if claimed.version != user.token_version:
        raise unauthorized("token revoked: the user's password, role or scope changed since it was issued; log in again")
    return Principal(user.username, user.role, user.worker_id, user.token_version)


def current_user(
    token: Annotated[str | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Principal:
    return _principal(token, ctx, session)


def current_user_or_cookie(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Principal:
    """The bearer token, or for a GET of evidence, the live stream or the API docs, the session
    cookie (see SESSION_COOKIE); every other route wants the bearer token."""
    if not token and request.method in ("GET", "HEAD") and request.url.path.startswith(COOKIE_PATHS):
        token = request.cookies.get(SESSION_COOKIE)
    return _principal(token, ctx, session)


def optional_user(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Principal | None:
    """Who is asking, or None for an anonymous caller (pages that say what they need)."""
    try:
        return current_user_or_cookie(request, token, ctx, session)
    except HTTPException:
        return None


CurrentUser = Annotated[Principal, Depends(current_user)]
DbSession = Annotated[Session, Depends(get_session)]
Ctx = Annotated[ApiContext, Depends(get_ctx)]


def _actor(user: Principal, ctx: ApiContext, session: Session) -> Actor:
    row = session.scalar(select(User).where(User.username == user.username))
    grid = list(row.grid or []) if row is not None else []
    unit = row.unit if row is not None else None
    tree = ctx.load_grid(session)
    return Actor(user.username, user.role, user.worker, unit, scope_for(tree, user.role, grid, user.worker))


def current_actor(
    user: Annotated[Principal, Depends(current_user)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Actor:
    return _actor(user, ctx, session)


def current_actor_or_cookie(
    user: Annotated[Principal, Depends(current_user_or_cookie)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Actor:
    return _actor(user, ctx, session)


def refusal(actor: Actor, why: str, code: int = status.HTTP_403_FORBIDDEN, detail: str | None = None) -> HTTPException:
    """Log a refused request on ``central.access`` and return its error to raise: 403, or 404 (with
    ``detail`` saying "no such …") where a read must not tell that the thing exists outside the scope."""
    access_log.warning("refused %s (%s): %s", actor.username, actor.role, why)
    return HTTPException(code, detail=detail or why)


def require_roles(*roles: str) -> Callable[[Actor], Actor]:
    def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise refusal(actor, f"needs role {'/'.join(roles)}", detail=f"needs role {' or '.join(roles)}")
        return actor

    return check


# The roles of the console's desk pages (monitor, board, dashboard, ops): they read cameras, edges,
# units and silences, each within their grid scope. Grid workers and units work from their tasks.
DESK_ROLES = ("admin", "monitor", "supervisor", "grid_chief")
DeskActor = Annotated[Actor, Depends(require_roles(*DESK_ROLES))]


def overlaps(actor: Actor, area: frozenset[str] | None) -> bool:
    """Whether an area (grid codes; None: the whole site) reaches into the actor's scope."""
    if actor.scope is None:
        return True
    return area is not None and not area.isdisjoint(actor.scope)


CurrentActor = Annotated[Actor, Depends(current_actor)]
