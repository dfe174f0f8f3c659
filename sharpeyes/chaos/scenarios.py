"""Named fault scenarios on real parts; each starts from a clean folder and counts, from the edge's
outbox and central's database, what was published, stored, lost and filed twice.

Every scenario publishes ``events`` start events (one incident each) through the edge's outbox and
ends when the outbox is empty (each event receipted by central) or a deadline passes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.publisher import HELLO_WAIT_S, RECEIPT_TIMEOUT_S
from sharpeyes.chaos.parts import Central, ChaosError, Edge, Proxy, broker, make_events, site_file, wait_for


@dataclass
class ChaosOptions:
    events: int = 2000
    receipt_timeout_s: float = RECEIPT_TIMEOUT_S  # the edge's default; tests pass a shorter one
    # The partition is compressed from the scenario's 10 minutes by default: the edge's reconnect
    # backoff is capped at 30 s, so any cut longer than that ends the same way (--partition-s 600
    # runs it in full).
    partition_s: float = 60.0
    workdir: Path | None = None
    # A control run: the edge ignores central's hello, so the broker's PUBACK deletes (as before
    # receipts); the same faults then show what receipts buy.
    receipts: bool = True


@dataclass
class ChaosResult:
    scenario: str
    published: int
    stored: int
    lost: int
    duplicated: int
    seconds: float
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


class _Run:
    """One scenario's parts in one folder; torn down whatever happens."""

    def __init__(self, folder: Path, opts: ChaosOptions, queue_limit: int | None = None) -> None:
        self.folder, self.opts = folder, opts
        self.broker = broker(folder, queue_limit)
        self.central = Central(folder, site_file(folder, self.broker.port))
        self.edge = Edge(folder, self.broker.port, receipt_timeout_s=opts.receipt_timeout_s, receipts=opts.receipts)
        self.box = self.edge.outbox()  # the detector's side of the edge: writes events, and is counted from
        self.started = time.monotonic()

    def edge_with_receipts(self) -> None:
        """Central up, the edge up and told by central's hello that receipts are on."""
        if self.central.proc is None:
            self.central.start()
        if self.edge.proc is None:
            self.edge.start()
        if self.opts.receipts:
            wait_for(lambda: self.edge.status().get("receipts_active"), 60, "central's hello to reach the edge")
        else:
            wait_for(lambda: self.edge.status().get("connected"), 60, "the edge to connect")
            time.sleep(HELLO_WAIT_S + 0.5)  # past the edge's wait for a hello, which it will ignore

    def publish(self) -> int:
        self.box.put_many(make_events(self.opts.events))
        return self.opts.events

    def stored(self) -> int:
        return self.central.counts()[1]

    def outbox_figures(self) -> tuple[int, int]:
        """(messages in the outbox, messages the broker has not acknowledged even once)."""
        return self.box.depth()[0], self.box.never_sent()

    def drained(self, timeout: float | None = None) -> None:
        what = "every event to be receipted (the edge's outbox empty)" if self.opts.receipts else "the outbox to empty"
        wait_for(lambda: self.outbox_figures()[0] == 0, timeout or 120 + self.opts.events / 20, what, interval=0.5)
        if not self.opts.receipts:  # control: the outbox empties on PUBACKs; give central time to get what it can
            self._wait_until_stored_settles()

    def _wait_until_stored_settles(self, quiet_s: float = 3.0, limit_s: float = 60.0) -> None:
        """A control run has no receipts to wait for: wait until central's count stops growing."""
        deadline, last = time.monotonic() + limit_s, -1
        while time.monotonic() < deadline and (now := self.stored()) != last:
            last = now
            time.sleep(quiet_s)

    def result(self, name: str, published: int, notes: str = "", **extra: Any) -> ChaosResult:
        if not self.opts.receipts:
            notes = f"CONTROL without receipts: {notes}"
        rows, distinct, twice = self.central.counts()
        status = self.edge.status()
        extra.setdefault("resends", status.get("resends"))
        return ChaosResult(scenario=name, published=published, stored=distinct, lost=max(0, published - distinct),
                           duplicated=(rows - distinct) + twice, seconds=round(time.monotonic() - self.started, 1),
                           notes=notes, extra=extra)

    def close(self) -> None:
        self.edge.stop()
        self.central.stop()
        self.broker.stop()
        self.box.close()


def broker_kill9_central_down(run: _Run) -> ChaosResult:
    run.edge_with_receipts()
    run.central.stop()  # its persistent session stays on the broker, collecting for it
    published = run.publish()
    wait_for(lambda: run.outbox_figures()[1] == 0, 60 + published / 50, "the broker to acknowledge every event")
    run.broker.kill()  # before its next autosave: what it held for central is gone
    run.broker.start()
    run.central.start()
    run.drained()
    return run.result("broker_kill9_central_down", published,
                      "broker killed (-9) with every event acknowledged to the edge and none at central")


def _crash_mid_burst(run: _Run, name: str, crash: Callable[[], None], note: str) -> ChaosResult:
    run.edge_with_receipts()
    published = run.publish()
    wait_for(lambda: run.stored() >= published // 3, 120, "a third of the burst at central", interval=0.05)
    crash()
    run.drained()
    return run.result(name, published, note)


def broker_kill9_mid_burst(run: _Run) -> ChaosResult:
    def crash() -> None:
        run.broker.kill()
        time.sleep(1.0)
        run.broker.start()

    return _crash_mid_burst(run, "broker_kill9_mid_burst", crash, "broker killed (-9) a third into the burst, back after 1 s")


def central_kill9_mid_burst(run: _Run) -> ChaosResult:
    def crash() -> None:
        run.central.kill()
        run.central.start()

    return _crash_mid_burst(run, "central_kill9_mid_burst", crash, "central killed (-9) a third into the burst, restarted")


def edge_kill9_full_outbox(run: _Run) -> ChaosResult:
    run.edge_with_receipts()
    run.edge.kill()
    published = run.publish()  # the outbox fills while the edge is down
    run.edge.start()
    wait_for(lambda: run.stored() >= published // 3, 120, "a third of the outbox at central", interval=0.05)
    run.edge.kill()
    run.edge.start()
    run.drained()
    return run.result("edge_kill9_full_outbox", published, "edge killed (-9) a third into draining a full outbox")


def refused_publish(run: _Run) -> ChaosResult:
    # The ACL lets every client read and write commands (central's receipts and hello) but not
    # publish events: the edge's events are refused with "not authorized" (0x87).
    acl = run.folder / "acl"
    acl.write_text("topic read sharpeyes/#\ntopic write sharpeyes/v1/+/+/cmd/#\n")
    run.broker.stop()
    run.broker.acl_file = acl
    run.broker.start()
    run.edge.max_refusals, run.edge.refusal_backoff_s = 3, 0.5
    run.edge_with_receipts()
    published = run.publish()
    wait_for(lambda: run.edge.status().get("buried"), 60, "a refused event to become a dead letter")
    refusal = run.edge.status().get("last_refusal")
    acl.write_text("topic readwrite sharpeyes/#\n")  # the operator fixes the ACL...
    run.broker.reload()
    time.sleep(0.5)
    retry = subprocess.run([sys.executable, "-m", "sharpeyes", "edge", "outbox", "--outbox", str(run.edge.outbox_path),
                            "--retry", "all", "--json"], capture_output=True, text=True, timeout=60)  # ...and re-queues
    if retry.returncode != 0:
        raise ChaosError(f"edge outbox --retry failed: {retry.stderr}")
    run.drained()
    return run.result("refused_publish", published, "ACL without the edge's topics, fixed and dead letters re-queued",
                      refusal=refusal)


def partition(run: _Run) -> ChaosResult:
    proxy = Proxy(run.broker.port)
    try:
        run.edge.broker_port = proxy.port
        run.edge_with_receipts()
        proxy.cut()
        published = run.publish()
        time.sleep(run.opts.partition_s)
        proxy.restore()
        run.drained(timeout=180 + run.opts.events / 20)
    finally:
        proxy.close()
    return run.result("partition_10min", published,
                      f"edge-broker link cut by a TCP proxy for {run.opts.partition_s:.0f} s"
                      + ("" if run.opts.partition_s >= 600 else " (compressed from 10 min)"))


def broker_queue_full(run: _Run) -> ChaosResult:
    run.edge_with_receipts()
    run.central.stop()
    published = run.publish()
    wait_for(lambda: run.outbox_figures()[1] == 0, 60 + published / 50, "the broker to acknowledge every event")
    run.central.start()
    run.drained()
    return run.result("broker_queue_full", published,
                      f"the broker queues at most {run.broker.max_queued_messages} messages for central while it is down "
                      "and drops the rest")


def edge_disk_full(run: _Run) -> ChaosResult:
    run.edge_with_receipts()
    run.central.stop()
    cap = 4 * 1024 * 1024
    box = run.edge.outbox(max_file_bytes=cap)  # the disk is "full" at 4 MB: a size cap, not a real disk
    try:
        # Snapshots that together are twice the cap, whatever the number of events.
        rows = make_events(run.opts.events, snapshot_bytes=max(20_000, 2 * cap // run.opts.events))
        for start in range(0, len(rows), 2):  # one event with its snapshot per write, as the edge writes
            box.put_many(rows[start:start + 2])
        dropped, full = dict(box.dropped), box.disk_full_writes
    finally:
        box.close()
    run.central.start()
    run.drained()
    return run.result("edge_disk_full", run.opts.events,
                      "outbox file capped at 4 MB (SQLite max_page_count: answers 'disk is full' as a full disk does); "
                      "every event kept, snapshots dropped and counted", dropped=dropped, disk_full_writes=full)


SCENARIOS: dict[str, Callable[[_Run], ChaosResult]] = {
    "broker_kill9_central_down": broker_kill9_central_down,
    "broker_kill9_mid_burst": broker_kill9_mid_burst,
    "central_kill9_mid_burst": central_kill9_mid_burst,
    "edge_kill9_full_outbox": edge_kill9_full_outbox,
    "refused_publish": refused_publish,
    "partition_10min": partition,
    "broker_queue_full": broker_queue_full,
    "edge_disk_full": edge_disk_full,
}


def run_scenario(name: str, opts: ChaosOptions) -> ChaosResult:
    scenario = SCENARIOS[name]
    # Only the full-queue scenario gets a broker whose queue for central holds a tenth of the burst.
    queue_limit = max(10, opts.events // 10) if name == "broker_queue_full" else None
    root = opts.workdir or Path(tempfile.mkdtemp(prefix="sharpeyes-chaos-"))
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    run = _Run(folder, opts, queue_limit)
    try:
        return scenario(run)
    finally:
        run.close()
        if opts.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
