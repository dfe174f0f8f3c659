"""Client-id slots for the ingest workers: which slots a worker takes, keeps, stops and hands back.

Pure: the lease rows (``leases``: name, holder, expiry) and the clock in, a ``Plan`` out; the I/O
(leases, MQTT) is ``central.ingest.worker``.

Why slots. On a shared subscription (``$share/<group>/...``) Mosquitto gives each message to one
member, and a member with a persistent session stays a member while it is away: a worker that
dies keeps getting its share, queued in its session, until a client with the same id comes back
(or the session expires and the queue is dropped). So the client ids are not the workers' own:
there are N slots, ``<prefix>-slot-<k>``, each held through a lease row (``ingest-slot-<k>@<prefix>``)
renewed every ``RENEW_S``. A worker connects with the client id of each slot it holds; when a worker dies, its
leases run out after ``TTL_S`` and a live worker takes its slots over, connects with their ids and
drains what the broker queued for them meanwhile. Every slot whose session may exist is therefore
drained by someone within about ``TTL_S + RENEW_S`` plus a connection.

Rules (``plan``), applied by every worker at each tick on the rows it read:

- a slot this worker runs whose row now names another holder is stopped at once (that holder took
  it over after this worker failed to renew in time);
- the slots it runs are renewed;
- free slots (no row, or an expired one) are dealt to the live workers, fewest slots first (ties
  by holder name), so workers that start together take one each and the survivors of a death
  share the dead one's slots; a worker takes those dealt to it, and any slot free for longer than
  ``FREE_GRACE_S`` (the worker it was dealt to did not come);
- rebalancing: while a live worker holds no slot (a spare), the worker with the most slots (ties
  by name) hands its highest one back (stop, then release the row); the spare takes it at its
  next tick.

Workers announce themselves with a row of their own (``ingest-worker-<tag>@<prefix>``), renewed before their slots
so that it runs out first: a dead worker is no longer dealt slots by the time its slots are free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

TTL_S = 6.0  # a slot's lease runs out this long after its last renewal
RENEW_S = 2.0  # each worker renews (and re-plans) this often
# The receiving process leaves the broker this long before the lease would run out by its own
# host's clock (``central.ingest.receiver``'s fence): a margin for the skew between hosts' clocks.
FENCE_MARGIN_S = 1.5
# A free slot the worker it was dealt to has not taken after this long is taken by anyone.
FREE_GRACE_S = 2 * RENEW_S
NAME_MAX = 64  # leases.name


@dataclass(frozen=True)
class SlotNames:
    """The names of one pool of slots: MQTT client ids and lease rows."""

    prefix: str
    slots: int

    def client_id(self, slot: int) -> str:
        return f"{self.prefix}-slot-{slot}"

    @property
    def suffix(self) -> str:
        """Every lease row of the pool ends so (``ingest-slot-<k>@<prefix>``, ``ingest-worker-<tag>@<prefix>``)."""
        return f"@{self.prefix}"

    def lease(self, slot: int) -> str:
        return f"ingest-slot-{slot}{self.suffix}"

    def worker(self, tag: str) -> str:
        return f"ingest-worker-{tag}{self.suffix}"

    def problem(self) -> str | None:
        """Why these names cannot be used, or None."""
        if self.slots < 1:
            return "--slots must be at least 1"
        if not self.prefix or any(c.isspace() or c in "+#/@" for c in self.prefix):
            return f"--slot-prefix {self.prefix!r}: give a non-empty name without spaces, '+', '#', '/' or '@'"
        longest = max(len(self.lease(self.slots - 1)), len(self.worker("0" * 8)))
        if longest > NAME_MAX:
            return (f"--slot-prefix {self.prefix!r} is too long for the lease names (at most "
                    f"{len(self.prefix) - (longest - NAME_MAX)} characters with --slots {self.slots})")
        return None

    def parse(self, name: str) -> tuple[str, str] | None:
        """("slot", "<k>") or ("worker", "<tag>") for a row of this pool, else None."""
        if not name.startswith("ingest-") or not name.endswith(self.suffix):
            return None
        kind, _, rest = name[len("ingest-"):-len(self.suffix)].partition("-")
        return (kind, rest) if kind in ("slot", "worker") and rest else None


@dataclass(frozen=True)
class LeaseRow:
    name: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class Plan:
    keep: tuple[int, ...] = ()  # run and renew
    stop: tuple[int, ...] = ()  # another holder took it: stop its ingest now, do not renew
    take: tuple[int, ...] = ()  # free: try to take its lease, then connect
    release: tuple[int, ...] = ()  # a spare waits: stop its ingest, then give the lease back
    strange: tuple[int, ...] = ()  # slots of this pool beyond --slots (a worker started with more)


@dataclass(frozen=True)
class Pool:
    """What the rows say: each slot's row and live holder (None: free), and the live workers."""

    rows: dict[int, LeaseRow]
    holders: dict[int, str | None]
    workers: frozenset[str]
    strange: tuple[int, ...]


def read_pool(names: SlotNames, me: str, rows: Iterable[LeaseRow], now: datetime) -> Pool:
    slot_rows: dict[int, LeaseRow] = {}
    holders: dict[int, str | None] = dict.fromkeys(range(names.slots))
    workers = {me}
    strange = []
    for row in rows:
        parsed = names.parse(row.name)
        if parsed is None:
            continue
        kind, rest = parsed
        live = row.expires_at > now
        if kind == "worker":
            if live:
                workers.add(row.holder)
            continue
        if not rest.isdigit():
            continue
        slot = int(rest)
        if slot >= names.slots:
            strange.append(slot)
            continue
        slot_rows[slot] = row
        if live:
            holders[slot] = row.holder
            workers.add(row.holder)
    return Pool(slot_rows, holders, frozenset(workers), tuple(sorted(strange)))


def plan(names: SlotNames, me: str, rows: Iterable[LeaseRow], now: datetime, running: Iterable[int],
         free_since: Mapping[int, datetime], *, settled: bool = True) -> Plan:
    """What worker ``me`` does at this tick.

    ``rows``: the pool's lease rows as read now; ``running``: the slots whose ingest ``me`` runs;
    ``free_since``: when ``me`` first saw each currently free slot free (a slot missing there
    counts as free since now); ``settled``: False during ``me``'s first tick, when workers
    starting alongside may not have announced themselves yet (nothing is taken or handed back).
    """
    pool = read_pool(names, me, rows, now)
    mine = sorted(set(running))
    # Another holder's row for a slot this worker runs, live or not: it took the slot over.
    stop = tuple(k for k in mine if k in pool.rows and pool.rows[k].holder != me)
    keep = [k for k in mine if k not in stop]
    load: Counter[str] = Counter(dict.fromkeys(pool.workers, 0))
    for holder in pool.holders.values():
        if holder is not None and holder != me:
            load[holder] += 1
    load[me] = len(keep)
    # Free: no live holder, or this worker's own row for a slot it does not run (taken again).
    free = [k for k in range(names.slots) if pool.holders[k] in (None, me) and k not in mine]
    take = []
    if settled:
        for k in free:
            dealt = min(load, key=lambda w: (load[w], w))
            load[dealt] += 1
            if dealt == me or now - free_since.get(k, now) >= timedelta(seconds=FREE_GRACE_S):
                take.append(k)
    release = _rebalance(me, load, keep) if settled and not free else []
    return Plan(keep=tuple(k for k in keep if k not in release), stop=stop, take=tuple(take),
                release=tuple(release), strange=pool.strange)


def _rebalance(me: str, load: Counter[str], keep: list[int]) -> list[int]:
    """The slots ``me`` hands back so that each spare (a live worker with none) gets one: the
    most loaded worker gives first, one slot per spare, never its last."""
    load = Counter(load)
    given: list[int] = []
    for spare in sorted(w for w, n in load.items() if n == 0):
        donor = min(load, key=lambda w: (-load[w], w))
        if load[donor] < 2:
            break
        load[donor] -= 1
        load[spare] += 1
        if donor == me:
            given.append(max(set(keep) - set(given)))
    return given
