"""JWT bearer tokens (HS256), the key that signs them, and the rules a key must meet."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt

from central.store.tables import utcnow

SECRET_ENV = "SHARPEYES_JWT_SECRET"
SECRET_FILE_ENV = "SHARPEYES_JWT_SECRET_FILE"
ALGORITHM = "HS256"
DEFAULT_TTL = timedelta(hours=12)
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_KEY_BYTES = 32
KEY_FIX = f"export {SECRET_ENV}=$(openssl rand -base64 48), or put such a key in a file named by {SECRET_FILE_ENV}"


class TokenKeyError(Exception):
    """A token key that cannot be used; the message names where it came from and the fix."""


@dataclass(frozen=True, slots=True)
class TokenKey:
    value: str
    source: str  # where it came from, for messages: the variable, the file, or "generated"


def configured_key() -> TokenKey | None:
    """The key an operator configured ($SHARPEYES_JWT_SECRET, else the file named by
    $SHARPEYES_JWT_SECRET_FILE), or None when neither is set. An empty one is an error."""
    if SECRET_ENV in os.environ:
        key = TokenKey(os.environ[SECRET_ENV].strip(), SECRET_ENV)
    elif path := os.environ.get(SECRET_FILE_ENV):
        try:
            key = TokenKey(Path(path).read_text(encoding="utf-8").strip(), f"{SECRET_FILE_ENV} ({path})")
        except OSError as exc:
            raise TokenKeyError(f"{SECRET_FILE_ENV}: cannot read {path}: {exc.strerror} (fix: {KEY_FIX})") from None
    else:
        return None
    check_key(key)
    return key


def check_key(key: TokenKey) -> None:
    if not key.value:
        raise TokenKeyError(f"{key.source}: the token key is empty (fix: {KEY_FIX})")
    if len(key.value.encode()) < MIN_KEY_BYTES:
        raise TokenKeyError(f"{key.source}: the token key is {len(key.value.encode())} bytes; HS256 needs at least "
                            f"{MIN_KEY_BYTES} random bytes, or anyone can guess it and forge an admin's token (fix: {KEY_FIX})")


def load_secret(var_dir: Path) -> TokenKey:
    """The configured key, else one generated once into VAR/jwt_secret (0600) so tokens survive a
    restart. ``central serve`` accepts the generated one only with --demo (central/auth/secrets_policy.py)."""
    key = configured_key()
    if key is not None:
        return key
    path = var_dir / "jwt_secret"
    if path.exists():
        key = TokenKey(path.read_text().strip(), f"generated ({path})")
        check_key(key)
        return key
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return TokenKey(secret, f"generated ({path})")


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str
    worker: str | None
    # The user's token_version when the token was issued; a password or role change bumps it.
    version: int = 0


class TokenError(Exception):
    pass


class TokenIssuer:
    def __init__(self, key: TokenKey | str, ttl: timedelta = DEFAULT_TTL) -> None:
        key = key if isinstance(key, TokenKey) else TokenKey(key, "the token key")
        check_key(key)  # a weak key is refused here too, whoever builds the issuer
        self._secret = key.value
        self.ttl = ttl

    def issue(self, who: Principal) -> str:
        now = utcnow()
        claims = {"sub": who.username, "role": who.role, "worker": who.worker, "ver": who.version,
                  "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "ver"]})
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None
        return Principal(claims["sub"], claims.get("role", ""), claims.get("worker"), int(claims["ver"]))
