"""Where the read-heavy endpoints read: a PostgreSQL streaming replica when it is close enough, else the primary.

``central serve --read-database-url URL`` gives the statistics, the grid index, the models' review
figures and the CSV exports a hot standby to read (``--read-max-lag-s``: how far behind it may be).
``ReadRouter.reader()`` answers which database to read and a ``Freshness`` that the response
carries: the source (``replica`` or ``primary``), how stale the figures may be (seconds), and
when the replica was not used, why. Without a read URL every read goes to the primary, staleness 0.

How far behind: the primary's ``pg_current_wal_lsn()`` against the replica's
``pg_last_wal_replay_lsn()``. Equal (or ahead: the two are read one after the other) means the
replica has everything, staleness 0. Otherwise the staleness is ``now() -
pg_last_xact_replay_timestamp()`` on the replica: the age of the newest commit it has replayed. That
timestamp alone is no measure: on an idle primary nothing new commits, so the age of the last
replayed commit grows for hours while the replica lacks nothing; only a WAL position it has not
replayed says it is behind. And a primary idle for long may write a little WAL of its own (a
checkpoint record) that the replica replays a few milliseconds later: when the age would count
(over CONFIRM_ABOVE_S), the probe gives the replica CONFIRM_WAIT_S to reach the position read and
says that wait, not the age, when it does.

The probe is cached for ``probe_interval_s`` (a dashboard's refresh does not double the load); a
replica that does not answer is probed again only after a backoff (doubling up to ``backoff_max_s``),
not on every request. Each change of the replica's state is logged once: down, behind, back.

Writes never go to the replica: only ``reader()``'s callers use it, for reads, and its connections
open with ``default_transaction_read_only`` (a hot standby refuses writes anyway). The ingest, the
scheduler, logins and every other route use the primary's sessions as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["replica", "primary"]
ReplicaState = Literal["ok", "behind", "down", "unusable"]

DEFAULT_MAX_LAG_S = 30.0
PROBE_INTERVAL_S = 1.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 15.0
CONFIRM_ABOVE_S = 1.0
CONFIRM_WAIT_S = 0.05
CONNECT_TIMEOUT_S = 3

# Headers every response that read through the router carries (central/api/routes_workflow.py and others).
SOURCE_HEADER = "X-Sharpeyes-Read-Source"
STALENESS_HEADER = "X-Sharpeyes-Staleness-S"
FALLBACK_HEADER = "X-Sharpeyes-Read-Fallback"


@dataclass(frozen=True, slots=True)
class Freshness:
    """Where a response's figures were read and how stale they may be."""

    source: Source
    staleness_s: float = 0.0
    fallback: str | None = None  # why the primary was read although a replica is configured

    def headers(self) -> dict[str, str]:
        out = {SOURCE_HEADER: self.source, STALENESS_HEADER: f"{self.staleness_s:.1f}"}
        if self.fallback is not None:
            # A header is one line of Latin-1; a server's message may be neither.
            out[FALLBACK_HEADER] = " ".join(self.fallback.split()).encode("ascii", "replace").decode("ascii")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "staleness_s": round(self.staleness_s, 1), "fallback": self.fallback}


PRIMARY = Freshness("primary")


@dataclass(frozen=True, slots=True)
class ReplicaProbe:
    """One look at primary and replica (the I/O half: ReadRouter._probe)."""

    in_recovery: bool  # pg_is_in_recovery() on the replica: false for anything but a standby
    primary_lsn: int  # pg_current_wal_lsn() on the primary, as bytes
    replayed_lsn: int | None  # pg_last_wal_replay_lsn() on the replica (None: nothing replayed yet)
    replay_age_s: float | None  # now() - pg_last_xact_replay_timestamp() on the replica (None: no commit replayed)
    caught_up_in_s: float | None = None  # reached primary_lsn within this wait after a first look behind


# -- the decision (pure) ------------------------------------------------------------------------------


def lag_seconds(probe: ReplicaProbe) -> float | None:
    """How stale a read of the replica may be; None when it is behind by an unknown time."""
    if probe.caught_up_in_s is not None:  # behind at the first look, at the primary's position a moment later
        return probe.caught_up_in_s
    if probe.replayed_lsn is not None and probe.replayed_lsn >= probe.primary_lsn:
        return 0.0
    if probe.replayed_lsn is None or probe.replay_age_s is None:
        return None
    return max(0.0, probe.replay_age_s)


def replica_state(probe: ReplicaProbe | None, max_lag_s: float) -> tuple[ReplicaState, Freshness]:
    """Read the replica, or the primary and why. ``probe`` None: the replica did not answer."""
    if probe is None:
        return "down", Freshness("primary", 0.0, "replica unreachable")
    if not probe.in_recovery:
        return "unusable", Freshness("primary", 0.0, "read database is not a standby (pg_is_in_recovery() is false)")
    lag = lag_seconds(probe)
    if lag is None:
        behind = probe.primary_lsn - (probe.replayed_lsn or 0)
        return "behind", Freshness("primary", 0.0, f"replica behind by {behind} bytes of WAL, replay time unknown")
    if lag > max_lag_s:
        return "behind", Freshness("primary", 0.0, f"replica behind by {lag:.0f} s > bound {max_lag_s:g} s")
    return "ok", Freshness("replica", lag)


def next_backoff(previous_s: float | None, low: float = BACKOFF_MIN_S, high: float = BACKOFF_MAX_S) -> float:
    """How long to leave a replica that did not answer before asking again: doubling, bounded."""
    return low if previous_s is None else min(high, max(low, previous_s * 2))


def transition_message(old: ReplicaState | None, new: ReplicaState, freshness: Freshness) -> str | None:
    """The one log line for a change of the replica's state (None: nothing worth saying)."""
    if new == old:
        return None
    if new == "ok":
        if old is None:
            return f"read replica in use (lag {freshness.staleness_s:.1f} s)"
        return f"read replica usable again (lag {freshness.staleness_s:.1f} s); statistics and exports read it again"
    return f"{freshness.fallback}; statistics and exports read the primary until it recovers"


def _first_line(exc: DBAPIError) -> str:
    said = str(exc.orig if exc.orig is not None else exc).strip()
    return said.splitlines()[0] if said else type(exc).__name__


# -- the router (I/O) -----------------------------------------------------------------------------------


def replica_engine(url: str) -> Engine:
    """An engine for the replica: read-only transactions, a short connect timeout (a dead host must not
    hold a request long), and pre-ping so a restarted replica's stale connections are replaced."""
    return create_engine(url, pool_pre_ping=True, connect_args={
        "connect_timeout": CONNECT_TIMEOUT_S, "options": "-c default_transaction_read_only=on"})


def check_read_urls(primary_url: str, read_url: str | None, max_lag_s: float = DEFAULT_MAX_LAG_S) -> None:
    """ValueError naming the problem: a replica needs PostgreSQL on both sides (SQLite has no replicas)."""
    if max_lag_s < 0:
        raise ValueError(f"--read-max-lag-s must be 0 or more, not {max_lag_s:g}")
    if not read_url:
        return
    for name, url in (("--database-url", primary_url), ("--read-database-url", read_url)):
        if not url.startswith("postgresql"):
            raise ValueError(f"a read replica needs PostgreSQL for both databases; {name} is a {url.split(':', 1)[0]} URL")


class ReadRouter:
    """Chooses where the read-heavy endpoints read (see the module's docstring); thread-safe."""

    def __init__(
        self,
        primary: sessionmaker[Session],
        replica: sessionmaker[Session] | None = None,
        *,
        max_lag_s: float = DEFAULT_MAX_LAG_S,
        probe_interval_s: float = PROBE_INTERVAL_S,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.probe_interval_s = probe_interval_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: ReplicaState | None = None
        self._choice: Freshness = PRIMARY
        self._next_probe_at = float("-inf")
        self._backoff_s: float | None = None
        self._last_error = ""

    @classmethod
    def for_urls(cls, primary: sessionmaker[Session], primary_url: str, read_url: str | None,
                 max_lag_s: float = DEFAULT_MAX_LAG_S) -> ReadRouter:
        """The router of ``central serve``: a replica only when ``read_url`` is given (check_read_urls)."""
        check_read_urls(primary_url, read_url, max_lag_s)
        if not read_url:
            return cls(primary, max_lag_s=max_lag_s)
        return cls(primary, sessionmaker(replica_engine(read_url), expire_on_commit=False), max_lag_s=max_lag_s)

    @property
    def state(self) -> ReplicaState | None:
        """The replica's state at the last probe (None: no replica, or not probed yet)."""
        return self._state

    def reader(self) -> tuple[sessionmaker[Session], Freshness]:
        """The sessions to read with and what the response says of them."""
        if self.replica is None:
            return self.primary, PRIMARY
        with self._lock:
            if self._clock() >= self._next_probe_at:
                self._refresh()
            choice = self._choice
        return (self.replica if choice.source == "replica" else self.primary), choice

    def run(self, chosen: tuple[sessionmaker[Session], Freshness], work: Callable[[Session], T]) -> tuple[T, Freshness]:
        """``work`` in a session of the chosen database; when the replica fails under it (stopped
        since the probe), probe again at once and do the work on the primary."""
        sessions, freshness = chosen
        if freshness.source == "primary":
            with sessions() as session:
                return work(session), freshness
        try:
            with sessions() as session:
                return work(session), freshness
        except DBAPIError as exc:
            log.debug("a read on the replica failed; reading the primary", exc_info=True)
            with self._lock:
                self._refresh()
                choice = self._choice
            reason = choice.fallback or f"replica read failed: {_first_line(exc)}"
            with self.primary() as session:
                return work(session), Freshness("primary", 0.0, reason)

    def read(self, work: Callable[[Session], T]) -> tuple[T, Freshness]:
        """``work`` where ``reader()`` says, and the freshness of what it read."""
        return self.run(self.reader(), work)

    def close(self) -> None:
        if self.replica is not None:
            bind = self.replica.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()

    # -- internals (callers hold self._lock) --

    def _refresh(self) -> None:
        probe = self._probe()
        state, choice = replica_state(probe, self.max_lag_s)
        message = transition_message(self._state, state, choice)
        if message is not None:
            if state == "down" and self._last_error:
                message += f" ({self._last_error})"
            (log.info if state == "ok" else log.warning)(message)
        self._state, self._choice = state, choice
        if state == "down":
            self._backoff_s = next_backoff(self._backoff_s, self.backoff_min_s, self.backoff_max_s)
            self._next_probe_at = self._clock() + self._backoff_s
        else:
            self._backoff_s = None
            self._next_probe_at = self._clock() + self.probe_interval_s

    def _probe(self) -> ReplicaProbe | None:
        assert self.replica is not None
        with self.primary() as session:
            primary_lsn = int(session.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")).scalar_one())
        try:
            with self.replica() as session:
                row = session.execute(text(
                    "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), "
                    "EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())")).one()
                probe = ReplicaProbe(bool(row[0]), primary_lsn, None if row[1] is None else int(row[1]),
                                     None if row[2] is None else float(row[2]))
                lag = lag_seconds(probe)
                if probe.in_recovery and (lag is None or lag > CONFIRM_ABOVE_S):
                    time.sleep(CONFIRM_WAIT_S)
                    again = session.execute(text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')")).scalar()
                    if again is not None and int(again) >= primary_lsn:
                        probe = ReplicaProbe(True, primary_lsn, int(again), probe.replay_age_s, CONFIRM_WAIT_S)
                return probe
        except DBAPIError as exc:
            self._last_error = _first_line(exc)
            return None
