"""Wire the parts together: database, users, grid, workflow, ingest thread, scheduler, webhooks, web app."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from broker.siteconfig import SiteConfig
from central.api.app import create_app
from central.api.context import ApiContext
from central.auth.tokens import TokenIssuer, load_secret
from central.auth.users import sync_users
from central.evidence.retention import retention_purge
from central.evidence.store import open_evidence_store
from central.fleet.site_source import SiteSource
from central.ingest.writer import BATCH_WINDOW_S, IngestDeps, MqttIngest
from central.store.changes import ChangeFeed
from central.store.clock import Clock
from central.store.db import make_engine, make_session_factory
from central.store.migrate import upgrade
from central.store.read_replica import DEFAULT_MAX_LAG_S, ReadRouter, check_read_urls
from central.store.tables import GridNode, utcnow
from central.workflow.config import WorkflowConfig
from central.workflow.engine import WorkflowEngine
from central.workflow.routing import GridRouter
from central.workflow.scheduler import DeadlineScheduler
from central.workflow.webhooks import WebhookSender

log = logging.getLogger(__name__)
INVENTORY_POLL_S = 1.0


@dataclass
class Central:
    engine: Engine
    app: FastAPI
    ctx: ApiContext
    ingest: MqttIngest | None
    workflow: WorkflowEngine | None = None
    scheduler: DeadlineScheduler | None = None
    webhooks: WebhookSender | None = None
    _started: list[object] = field(default_factory=list)
    _follower: threading.Thread | None = None

    def start_ingest(self) -> None:
        self._follow_inventory()
        if self.ingest is not None:
            self.ingest.start()

    def _follow_inventory(self) -> None:
        """Check the inventory once a second, so that a process serving no requests (an ingest worker)
        files events of a camera another replica just added instead of dead-lettering them."""
        if self._follower is not None:
            return

        def follow() -> None:
            while not self.ctx.closing.wait(INVENTORY_POLL_S):
                self.ctx.refresh_site()

        self._follower = threading.Thread(target=follow, name="inventory-follower", daemon=True)
        self._follower.start()

    def start_background(self) -> None:
        """The deadline scheduler and the webhook sender.

        Every ``serve`` starts both; a lease each in the database (``central.store.lease``) lets one
        process at a time work, and another takes over when it stops or dies.
        """
        self._follow_inventory()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.webhooks is not None:
            self.webhooks.start()

    def close(self) -> None:
        """End live streams, stop the ingest and background work (handing their leases over), release the
        database; safe twice."""
        self.ctx.closing.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self._follower is not None:
            self._follower.join(5)
        if self.ctx.reads is not None:
            self.ctx.reads.close()
        self.engine.dispose()


def seed_grid(session: Session, site: SiteConfig) -> None:
    """Add the configured grid nodes the database lacks; edits made through the API are kept."""
    known = set(session.scalars(select(GridNode.code)))
    for cell in site.grid:
        if cell.code not in known:
            session.add(GridNode(code=cell.code, name=cell.name, level=cell.level, parent=cell.parent,
                                 workers=list(cell.workers)))
    session.commit()


def build_central(
    site: SiteConfig,
    database_url: str,
    evidence_dir: Path | str,
    var_dir: Path,
    ingest: bool = True,
    client_id: str | None = None,
    workflow: WorkflowConfig | None = None,
    clock: Clock | None = None,
    shared_group: str | None = None,
    demo: bool = False,
    batch_window_s: float | None = None,
    config_path: str | None = None,
    read_database_url: str | None = None,
    read_max_lag_s: float = DEFAULT_MAX_LAG_S,
) -> Central:
    """Migrate the database, load users and grid, and build (not start) ingest, scheduler and app.

    SITE's own parts (grid, people, broker) are used as given; its edges and cameras only seed an
    empty inventory: after that the database's newest versions are the edges (site_source.py).
    READ_DATABASE_URL: a streaming replica that statistics and exports read while it is at most
    READ_MAX_LAG_S behind (central/store/read_replica.py); everything else uses DATABASE_URL."""
    workflow = workflow or WorkflowConfig()
    workflow.check_against(site)
    check_read_urls(database_url, read_database_url, read_max_lag_s)  # ValueError before anything is migrated
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    source = SiteSource(site, sessions, config_path)
    with sessions() as session:
        count = sync_users(session, site.users)
        seed_grid(session, site)
        site = source.start(session, (clock.now() if clock is not None else utcnow()))
    log.info("loaded %d user(s) from the site configuration", count)
    feed = ChangeFeed()
    evidence = open_evidence_store(evidence_dir)  # a folder, file:// or s3:// URL
    router = GridRouter(site)
    ctx = ApiContext(
        sessions=sessions,
        evidence=evidence,
        tokens=TokenIssuer(load_secret(var_dir)),
        feed=feed,
        site=site,
        demo=demo,
        inventory=source,
        reads=ReadRouter.for_urls(sessions, database_url, read_database_url, read_max_lag_s),
    )
    source.on_change.append(lambda current: setattr(ctx, "site", current))
    wf = WorkflowEngine(workflow, router.tree, clock)
    ctx.workflow_engine = wf
    ctx.metrics.follow_edges(sessions)
    with sessions() as session:
        wf.grid = ctx.load_grid(session)
    mqtt_ingest = None
    if ingest:
        deps = IngestDeps(sessions=sessions, evidence=evidence, router=router, feed=feed, workflow=wf,
                          hello_edges=(site.site, tuple(edge.id for edge in site.edges)), metrics=ctx.metrics)
        mqtt_ingest = MqttIngest(site.broker, deps, client_id or f"sharpeyes-central-{site.site}",
                                 shared_group=shared_group,
                                 batch_window_s=BATCH_WINDOW_S if batch_window_s is None else batch_window_s)
        ctx.mqtt_connected = lambda: mqtt_ingest.connected

        def follow_site(current: SiteConfig) -> None:
            # Events of a camera added since the start are filed, not dead-lettered as unknown.
            deps.router = GridRouter(current)
            deps.hello_edges = (current.site, tuple(edge.id for edge in current.edges))

        source.on_change.append(follow_site)
        ctx.after_commit = mqtt_ingest.notify_pending
    scheduler = DeadlineScheduler(sessions, wf, workflow.scheduler_interval_s, after_change=lambda _r: ctx.changed(),
                                  purge=retention_purge(workflow.retention, evidence))
    webhooks = WebhookSender(sessions, workflow.webhooks, clock)
    scheduler.on_tick = ctx.metrics.scheduler_tick
    webhooks.on_attempt = ctx.metrics.webhook_attempt
    if mqtt_ingest is not None:
        ctx.ingest_backlog = lambda: mqtt_ingest.backlog
        ctx.metrics.follow_backlog(lambda: mqtt_ingest.backlog)
    ctx.leader_state = lambda: {"deadlines": scheduler.lease.held(), "webhooks": webhooks.lease.held()}
    return Central(engine=engine, app=create_app(ctx), ctx=ctx, ingest=mqtt_ingest, workflow=wf,
                   scheduler=scheduler, webhooks=webhooks)
