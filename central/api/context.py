"""What every route needs, built once by the server and kept on ``app.state.ctx``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.siteconfig import SiteConfig
from central.auth.rate_limit import RateLimiter
from central.auth.tokens import TokenIssuer
from central.evidence.redaction import Redactor
from central.evidence.store import EvidenceBackend
from central.fleet.site_source import SiteSource
from central.reporting.metrics import CentralMetrics
from central.reporting.stats_sql import ResultCache
from central.store.changes import ChangeFeed
from central.store.read_replica import ReadRouter
from central.store.tables import GridNode
from central.workflow.engine import WorkflowEngine
from central.workflow.grid import GridTree, Node

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    sessions: sessionmaker[Session]
    evidence: EvidenceBackend
    tokens: TokenIssuer
    feed: ChangeFeed = field(default_factory=ChangeFeed)
    # None when this process runs no ingest (``--no-ingest``).
    mqtt_connected: Callable[[], bool] | None = None
    ingest_backlog: Callable[[], int] | None = None
    leader_state: Callable[[], dict[str, bool]] | None = None
    stream_poll_s: float = 0.5
    # Set when the server shuts down, so open live streams end instead of holding it up.
    closing: threading.Event = field(default_factory=threading.Event)
    workflow_engine: WorkflowEngine | None = None
    site: SiteConfig | None = None
    # Called after an API change is committed: bump the live feed, send tasks and commands.
    after_commit: Callable[[], None] | None = None
    # --demo: anonymous Open311, docs without login, a banner on every page (central/auth/secrets_policy.py).
    demo: bool = False
    metrics: CentralMetrics = field(default_factory=CentralMetrics)  # GET /metrics (central/reporting/metrics.py)
    stats_cache: ResultCache = field(default_factory=ResultCache)  # /stats between changes
    # The edges and cameras of ctx.site come from the database (central/fleet/site_source.py).
    inventory: SiteSource | None = None
    # Where statistics and exports read (--read-database-url: a replica; central/store/read_replica.py).
    reads: ReadRouter | None = None
    _redactor: Redactor | None = None
    _open311_limiter: RateLimiter | None = None

    def redactor(self) -> Redactor:
        if self._redactor is None:
            self._redactor = Redactor()
        return self._redactor

    def open311_limiter(self) -> RateLimiter:
        if self._open311_limiter is None:
            self._open311_limiter = RateLimiter(self.workflow().config.open311.rate_per_minute, 60.0)
        return self._open311_limiter

    def read_router(self) -> ReadRouter:
        """The statistics' and exports' reads: the replica's router, or one that always reads the primary."""
        if self.reads is None:
            self.reads = ReadRouter(self.sessions)
        return self.reads

    def workflow(self) -> WorkflowEngine:
        if self.workflow_engine is None:
            from central.workflow.routing import GridRouter

            self.workflow_engine = GridRouter(self.site).default_engine()
        return self.workflow_engine

    def refresh_site(self) -> None:
        """Bring ctx.site up to the database's inventory (another replica may have changed it)."""
        if self.inventory is None:
            return
        try:
            self.site = self.inventory.refresh()
        except Exception:  # noqa: BLE001 - a database outage: serve the copy held (health says why)
            log.warning("could not check the inventory for changes; serving the copy held", exc_info=True)

    def changed(self) -> None:
        self.feed.bump()
        if self.after_commit is not None:
            self.after_commit()

    def camera_cell(self, camera: str) -> str | None:
        """The grid cell the site configuration gives a camera (None: not configured here)."""
        found = self.site.camera(camera) if self.site is not None else None
        return found[1].grid_cell if found is not None else None

    def load_grid(self, session: Session) -> GridTree:
        rows = session.scalars(select(GridNode)).all()
        if not rows:
            return self.workflow().grid
        areas = {n.code: n.area for n in self.workflow().grid.nodes.values()}
        return GridTree.of(Node(r.code, r.name, r.level, r.parent, tuple(r.workers or ()), areas.get(r.code))
                           for r in rows)
