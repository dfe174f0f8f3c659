"""Wire the parts together: database, users, evidence store, ingest thread and the web app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from broker.siteconfig import SiteConfig
from central.api.app import create_app
from central.api.context import ApiContext
from central.changes import ChangeFeed
from central.db import make_engine, make_session_factory
from central.evidence_store import open_evidence_store
from central.migrate import upgrade
from central.mqtt_ingest import IngestDeps, MqttIngest
from central.routing import GridRouter
from central.tokens import TokenIssuer, load_secret
from central.users import sync_users

log = logging.getLogger(__name__)


@dataclass
class Central:
    engine: Engine
    app: FastAPI
    ctx: ApiContext
    ingest: MqttIngest | None

    def start_ingest(self) -> None:
        if self.ingest is not None:
            self.ingest.start()

    def close(self) -> None:
        """End live streams, stop the ingest and release the database; safe to call twice."""
        self.ctx.closing.set()
        if self.ingest is not None:
            self.ingest.stop()
        self.engine.dispose()


def build_central(
    site: SiteConfig,
    database_url: str,
    evidence_dir: Path | str,
    var_dir: Path,
    ingest: bool = True,
    client_id: str | None = None,
) -> Central:
    """Migrate the database, load users, and build (not start) the ingest and the app."""
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        count = sync_users(session, site.users)
    log.info("loaded %d user(s) from the site configuration", count)
    feed = ChangeFeed()
    evidence = open_evidence_store(evidence_dir)  # a folder, file:// or s3:// URL
    mqtt_ingest = None
    if ingest:
        deps = IngestDeps(sessions=sessions, evidence=evidence, router=GridRouter(site), feed=feed)
        mqtt_ingest = MqttIngest(site.broker, deps, client_id or f"sharpeyes-central-{site.site}")
    ctx = ApiContext(
        sessions=sessions,
        evidence=evidence,
        tokens=TokenIssuer(load_secret(var_dir)),
        feed=feed,
        mqtt_connected=(lambda: mqtt_ingest.connected) if mqtt_ingest is not None else None,
    )
    return Central(engine=engine, app=create_app(ctx), ctx=ctx, ingest=mqtt_ingest)
