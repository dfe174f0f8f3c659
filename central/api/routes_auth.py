"""Log in (OAuth2 password flow, throttled), log out, and ask who you are."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from central.api.deps import SESSION_COOKIE, Ctx, CurrentActor, DbSession
from central.api.errors import responses
from central.api.schemas import MeOut, TokenOut
from central.auth import login_guard
from central.auth.tokens import Principal
from central.auth.users import authenticate
from central.store.tables import User, utcnow

public = APIRouter()
private = APIRouter()
access_log = logging.getLogger("central.access")


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@public.post("/auth/token", response_model=TokenOut, responses=responses(401, 429))
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, response: Response, ctx: Ctx,
          session: DbSession) -> TokenOut:
    address, now = client_address(request), utcnow()
    locked = login_guard.lockout(session, form.username, address, now)
    if locked is not None:
        access_log.warning("login refused for %r from %s: locked out (%s)", form.username, address, locked.reason)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=locked.reason,
                            headers={"Retry-After": str(locked.retry_after_s)})
    user = authenticate(session, form.username, form.password)
    login_guard.record(session, form.username, address, user is not None, now)
    if user is None:
        access_log.warning("failed login for %r from %s", form.username, address)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    issued = ctx.tokens.issue(Principal(user.username, user.role, user.worker_id, user.token_version))
    ttl = int(ctx.tokens.ttl.total_seconds())
    response.set_cookie(SESSION_COOKIE, issued, max_age=ttl, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return TokenOut(access_token=issued, expires_in=ttl)


@public.post("/auth/logout", status_code=204)
def logout(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@private.get("/me", response_model=MeOut, responses=responses(401))
def me(actor: CurrentActor, session: DbSession, ctx: Ctx) -> MeOut:
    row = session.scalar(select(User).where(User.username == actor.username))
    return MeOut(username=actor.username, role=actor.role, worker=actor.worker, unit=actor.unit,
                 grid=list((row.grid if row else None) or []),
                 scope=sorted(actor.scope) if actor.scope is not None else None, demo=ctx.demo)
