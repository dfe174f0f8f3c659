"""JWT bearer tokens (HS256) and the secret that signs them."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt

from central.tables import utcnow

SECRET_ENV = "SHARPEYES_JWT_SECRET"
ALGORITHM = "HS256"
DEFAULT_TTL = timedelta(hours=12)


def load_secret(var_dir: Path) -> str:
    """The env secret, or one generated once and kept 0600 so tokens survive a restart."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    path = var_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str
    worker: str | None


class TokenError(Exception):
    pass


class TokenIssuer:
    def __init__(self, secret: str, ttl: timedelta = DEFAULT_TTL) -> None:
        self._secret = secret
        self.ttl = ttl

    def issue(self, who: Principal) -> str:
        now = utcnow()
        claims = {"sub": who.username, "role": who.role, "worker": who.worker, "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None
        return Principal(claims["sub"], claims.get("role", ""), claims.get("worker"))
