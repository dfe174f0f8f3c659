"""Log in (OAuth2 password flow) and ask who you are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from central.api.deps import Ctx, CurrentActor, DbSession
from central.api.schemas import MeOut, TokenOut
from central.tables import User
from central.tokens import Principal
from central.users import authenticate

public = APIRouter()
private = APIRouter()


@public.post("/auth/token", response_model=TokenOut)
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], ctx: Ctx, session: DbSession) -> TokenOut:
    user = authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    issued = ctx.tokens.issue(Principal(user.username, user.role, user.worker_id))
    return TokenOut(access_token=issued, expires_in=int(ctx.tokens.ttl.total_seconds()))


@private.get("/me", response_model=MeOut)
def me(actor: CurrentActor, session: DbSession) -> MeOut:
    row = session.scalar(select(User).where(User.username == actor.username))
    return MeOut(username=actor.username, role=actor.role, worker=actor.worker, unit=actor.unit,
                 grid=list((row.grid if row else None) or []),
                 scope=sorted(actor.scope) if actor.scope is not None else None)
