"""Users from the site configuration, bcrypt-hashed into the users table at start-up."""

from __future__ import annotations

import functools
import logging
from typing import Annotated

import bcrypt
from pydantic import AfterValidator, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.siteconfig import UserConfig
from central.store.tables import User

log = logging.getLogger(__name__)

# bcrypt looks at 72 bytes at most and bcrypt>=5 refuses longer input outright.
MAX_PASSWORD_BYTES = 72


def _fits_bcrypt(password: str) -> str:
    # Counted in UTF-8 bytes, which is what bcrypt takes: 72 characters of Chinese are 216 bytes.
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt's limit; "
                         "a Chinese character takes 3); choose a shorter one")
    return password


# A new password from the API: at least 12 characters, at most 72 bytes.
Password = Annotated[str, Field(min_length=12, max_length=MAX_PASSWORD_BYTES,
                                description=f"12 characters or more, at most {MAX_PASSWORD_BYTES} bytes in UTF-8"),
                     AfterValidator(_fits_bcrypt)]


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the username is unknown, so a wrong name takes as long as a wrong password.
    return hash_password("sharpeyes-no-such-user")


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def bump_token_version(user: User) -> None:
    """Revoke every token issued to the user so far (they carry the old version)."""
    user.token_version = (user.token_version or 0) + 1


def sync_users(session: Session, users: list[UserConfig]) -> int:
    """Make the users table follow the site file for the users the file owns.

    Ownership: a user listed in the site file is the file's (``managed_by = "file"``): it is
    created or updated here at every start, and the API refuses to edit it, so no change made in
    one place is silently undone by the other. A user created through the API is the database's
    (``"api"``) and the file leaves it alone, unless the file later lists the same name, which
    takes it over (logged). File users no longer listed are disabled, not deleted, because records
    name them. A password is re-hashed only when it changed (bcrypt is slow on purpose); a new
    password, role, scope or a disabling revokes the user's tokens.
    """
    count = 0
    configured = {cfg.username for cfg in users}
    for user in session.scalars(select(User).where(User.active.is_(True), User.managed_by == "file")):
        if user.username not in configured:
            log.info("user %s is no longer in the site file; disabling it", user.username)
            user.active = False
            bump_token_version(user)
    for cfg in users:
        secret = cfg.secret()
        if not secret:
            log.warning(
                "user %s has no password (set %s); they cannot log in",
                cfg.username,
                cfg.password_env or "password",
            )
            continue
        if len(secret.encode()) > MAX_PASSWORD_BYTES:
            log.error("user %s: password longer than %d bytes, which bcrypt cannot use; skipped",
                      cfg.username, MAX_PASSWORD_BYTES)
            continue
        found = session.scalar(select(User).where(User.username == cfg.username))
        if found is None:
            user = User(username=cfg.username, role=cfg.role, password_hash=hash_password(secret), token_version=0)
            session.add(user)
        else:
            user = found
            if user.managed_by == "api":
                log.warning("user %s was created through the API and is now listed in the site file, which takes "
                            "it over from here on", cfg.username)
            before = (user.role, user.worker_id, list(user.grid or []), user.unit, user.active)
            if not check_password(secret, user.password_hash):
                user.password_hash = hash_password(secret)
                bump_token_version(user)
            elif before != (cfg.role, cfg.worker, list(cfg.grid), cfg.unit, True):
                bump_token_version(user)
        user.role, user.worker_id, user.active = cfg.role, cfg.worker, True
        user.grid, user.unit = list(cfg.grid), cfg.unit
        user.managed_by = "file"
        count += 1
    session.commit()
    return count


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password(password, _dummy_hash())
        return None
    if not user.active or not check_password(password, user.password_hash):
        return None
    return user
