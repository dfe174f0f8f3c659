"""Leader leases: one central process at a time does the singleton work (deadlines, webhooks).

Every ``central serve`` starts the deadline scheduler and the webhook sender; a lease row in the
database (``leases``: name, holder, acquired_at, expires_at) decides which process's copy works.
``LeaderLease.acquire`` reads the row and, when it is free (absent or expired) or already this
holder's, takes or renews it with one conditional write: an UPDATE whose WHERE repeats the
condition, or the INSERT of a missing row, which the primary key lets only one process win.
Both databases make that atomic: PostgreSQL re-checks a waiting UPDATE's WHERE against the row
the winner committed, SQLite has one writer at a time. A holder that stops cleanly deletes its
row, so a follower takes over on its next try; one that dies is replaced once the TTL passes.

Expiry is judged by each process's clock (``central.store.clock``, so tests move it by hand): hosts keep
NTP time, and a TTL of several ticks stays well above their skew. A holder that stalls past its
TTL may overlap its successor briefly; the scheduler's escalation is a conditional update so
that overlap cannot escalate twice, and webhooks are delivered at least once (receivers dedupe
by ``X-Sharpeyes-Delivery``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import case, delete, insert, literal, or_, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from central.store.clock import Clock
from central.store.tables import Lease, UtcDateTime

log = logging.getLogger(__name__)


def default_holder() -> str:
    """Unique per lease object: host and pid name the process, the suffix tells two in one apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaderLease:
    """The named lease as seen by one would-be holder.

    ``renew_s`` lets a caller that asks often (the webhook sender polls twice a second) skip the
    database while its last renewal is younger than that; 0 writes on every ``acquire``.
    """

    def __init__(self, sessions: sessionmaker[Session], name: str, ttl_s: float, clock: Clock | None = None,
                 holder: str | None = None, renew_s: float = 0.0) -> None:
        if ttl_s <= 0 or not 0 <= renew_s < ttl_s:
            raise ValueError("a lease needs ttl_s > 0 and 0 <= renew_s < ttl_s")
        self.sessions = sessions
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.renew = timedelta(seconds=renew_s)
        self.clock = clock or Clock()
        self.holder = holder or default_holder()
        self._renewed_at: datetime | None = None  # set while this holder believes it leads
        self._expires_at: datetime | None = None
        self._seen_leader: str | None = None  # the other holder last logged as leading

    def held(self, now: datetime | None = None) -> bool:
        """Whether this holder's last renewal still runs at ``now`` (no database access)."""
        now = now or self.clock.now()
        return self._expires_at is not None and now < self._expires_at

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; False while another holder's lease runs."""
        now = now or self.clock.now()
        if self._renewed_at is not None and self.held(now) and now < self._renewed_at + self.renew:
            return True
        expires = now + self.ttl
        try:
            with self.sessions() as session:
                row = session.execute(select(Lease.holder, Lease.expires_at).where(Lease.name == self.name)).first()
                if row is None:
                    session.execute(insert(Lease).values(name=self.name, holder=self.holder, acquired_at=now,
                                                         expires_at=expires))
                    won = True
                elif row.holder != self.holder and row.expires_at > now:
                    won = False
                else:
                    won = cast(CursorResult[Any], session.execute(
                        update(Lease)
                        .where(Lease.name == self.name, or_(Lease.holder == self.holder, Lease.expires_at <= now))
                        .values(holder=self.holder, expires_at=expires,
                                acquired_at=case((Lease.holder == self.holder, Lease.acquired_at),
                                                 else_=literal(now, UtcDateTime())))
                        .execution_options(synchronize_session=False)
                    )).rowcount == 1
                session.commit()
        except IntegrityError:  # another holder inserted the missing row first
            row, won = None, False
        self._note(won, row, now, expires)
        return won

    def release(self) -> None:
        """Give the lease up (clean stop) so a follower takes over on its next try."""
        if self._expires_at is None:
            return
        self._renewed_at = self._expires_at = None
        try:
            with self.sessions() as session:
                session.execute(delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder))
                session.commit()
        except Exception:  # noqa: BLE001 - the database may be gone at shutdown; the TTL frees it then
            log.warning("lease %s: %s could not release it; it frees itself when it expires", self.name,
                        self.holder, exc_info=True)
            return
        log.info("lease %s: %s released it", self.name, self.holder)

    def _note(self, won: bool, row: Row[str, datetime] | None, now: datetime, expires: datetime) -> None:
        was_leader = self._renewed_at is not None
        if won:
            if not was_leader:
                before = row.holder if row is not None else None
                if row is None or before == self.holder:
                    log.info("lease %s: %s leads now", self.name, self.holder)
                else:
                    log.info("lease %s: %s takes over from %s (expired %s)", self.name, self.holder, before,
                             row.expires_at.isoformat())
            self._renewed_at, self._expires_at, self._seen_leader = now, expires, None
            return
        leader = getattr(row, "holder", None)
        if was_leader:
            log.info("lease %s: %s lost it to %s; it stands by", self.name, self.holder, leader or "another holder")
        elif leader is not None and leader != self._seen_leader:
            log.info("lease %s: %s leads; %s stands by", self.name, leader, self.holder)
        self._renewed_at = self._expires_at = None
        self._seen_leader = leader
