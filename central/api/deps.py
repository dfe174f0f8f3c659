"""Dependencies: the request's database session and who is asking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.api.context import ApiContext
from central.grid import scope_for
from central.tables import User
from central.tokens import Principal, TokenError
from central.workflow import Actor

access_log = logging.getLogger("central.access")

TOKEN_URL = "/api/v1/auth/token"
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


def get_session(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _principal(token: str | None, ctx: ApiContext, session: Session) -> Principal:
    if not token:
        raise _unauthorized("not authenticated: log in at " + TOKEN_URL)
    try:
        claimed = ctx.tokens.verify(token)
    except TokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from None
    # Role and worker come from the database, so a changed or removed user takes effect at once.
    user = session.scalar(select(User).where(User.username == claimed.username))
    if user is None or not user.active:
        raise _unauthorized("user no longer exists or is disabled")
    return Principal(user.username, user.role, user.worker_id)


def current_user(
    token: Annotated[str | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
) -> Principal:
    return _principal(token, ctx, session)


def current_user_or_query(
    token: Annotated[str | None, Depends(_bearer)],
    ctx: Annotated[ApiContext, Depends(get_ctx)],
    session: Annotated[Session, Depends(get_session)],
    access_token: Annotated[str | None, Query(description="for <img> and EventSource, which cannot send headers")] = None,
) -> Principal:
    return _principal(token or access_token, ctx, session)


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


def current_actor_or_query(
    user: Annotated[Principal, Depends(current_user_or_query)],
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
