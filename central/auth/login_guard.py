"""Login throttling: every attempt is recorded; too many failures lock the name or the address out.

Read back from the database, so every central process behind a load balancer sees the same
counts, and a locked-out attempt is answered before bcrypt runs (a flood costs no CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.store.tables import LoginAttempt


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    window: timedelta = timedelta(minutes=15)
    max_user_failures: int = 5  # per username since its last success, within the window
    max_address_failures: int = 20  # per client address, whatever names it tries


@dataclass(frozen=True, slots=True)
class Lockout:
    reason: str
    retry_after_s: int


def lockout(session: Session, username: str, address: str, now: datetime,
            policy: LoginPolicy = LoginPolicy()) -> Lockout | None:
    since = now - policy.window
    last_ok = session.scalar(select(func.max(LoginAttempt.at))
                             .where(LoginAttempt.username == username, LoginAttempt.ok.is_(True)))
    user_since = max(since, last_ok) if last_ok is not None else since
    user_failures = session.execute(
        select(func.count(), func.min(LoginAttempt.at))
        .where(LoginAttempt.username == username, LoginAttempt.ok.is_(False), LoginAttempt.at > user_since)).one()
    if user_failures[0] >= policy.max_user_failures:
        return Lockout(f"too many failed logins for {username}; try again later",
                       _retry(user_failures[1], now, policy))
    address_failures = session.execute(
        select(func.count(), func.min(LoginAttempt.at))
        .where(LoginAttempt.address == address, LoginAttempt.ok.is_(False), LoginAttempt.at > since)).one()
    if address_failures[0] >= policy.max_address_failures:
        return Lockout("too many failed logins from this address; try again later",
                       _retry(address_failures[1], now, policy))
    return None


def _retry(oldest: datetime | None, now: datetime, policy: LoginPolicy) -> int:
    if oldest is None:
        return int(policy.window.total_seconds())
    return max(1, int((oldest + policy.window - now).total_seconds()) + 1)


def record(session: Session, username: str, address: str, ok: bool, now: datetime) -> None:
    session.add(LoginAttempt(at=now, username=username[:64], address=address[:64], ok=ok))
    session.commit()
