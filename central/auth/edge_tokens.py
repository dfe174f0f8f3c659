"""Per-edge bearer tokens for the routes edges call over HTTP (their model downloads).

Minted by ``sharpeyes central edge-token EDGE``: 256 random bits, shown once; the database keeps
only the sha256 (``edge_credentials``), so a leaked database names no usable token and every central
replica checks a token with one indexed read. The edge reads its token from the environment
variable its site file names (``central: token_env``); it never enters a configuration message."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from central.store.model_tables import EdgeCredential

TOKEN_PREFIX = "se_edge_"  # so a token found in a log or a paste is recognised for what it is


@dataclass(frozen=True, slots=True)
class EdgeIdentity:
    site: str
    edge: str


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (None when there is none or it is malformed)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(TOKEN_PREFIX):
        return None
    return value


def mint(session: Session, site: str, edge: str, *, actor: str, at: datetime, revoke_others: bool = True) -> str:
    """A new token for EDGE (committed); by default the edge's earlier tokens stop working now."""
    if revoke_others:
        revoke(session, site, edge, at=at)
    token = new_token()
    session.add(EdgeCredential(site=site, edge=edge, token_sha256=token_sha256(token), created_at=at,
                               created_by=actor))
    session.commit()
    return token


def revoke(session: Session, site: str, edge: str, *, at: datetime) -> int:
    """Revoke every live token of EDGE (not committed); how many."""
    result = session.execute(update(EdgeCredential)
                             .where(EdgeCredential.site == site, EdgeCredential.edge == edge,
                                    EdgeCredential.revoked_at.is_(None))
                             .values(revoked_at=at))
    return int(getattr(result, "rowcount", 0) or 0)


def verify(session: Session, token: str | None) -> EdgeIdentity | None:
    """The edge a live token belongs to; None for no token, an unknown or a revoked one."""
    if not token:
        return None
    digest = token_sha256(token)
    row = session.scalar(select(EdgeCredential).where(EdgeCredential.token_sha256 == digest))
    # The lookup is by an index on the hash; the comparison again in constant time costs nothing.
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return EdgeIdentity(row.site, row.edge)
