"""`sharpeyes central ...`: serve the incident service, run ingest workers, migrate, verify the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from broker.logsetup import setup_logging
from central.cli_fleet import edge_token_command, inventory_app

if TYPE_CHECKING:
    from broker.siteconfig import SiteConfig
    from central.evidence.store import EvidenceBackend
    from central.workflow.config import WorkflowConfig

app = typer.Typer(help="central commands.", no_args_is_help=True)
# The fleet's commands live in a module of their own (central/cli_fleet.py).
app.command("edge-token")(edge_token_command)
app.add_typer(inventory_app, name="inventory")


def _load_configuration(config: Path, workflow: Path | None) -> tuple[SiteConfig, WorkflowConfig]:
    """The site file and the workflow file, checked against each other; exit 2 naming the problems."""
    from broker.configbase import ConfigError
    from broker.siteconfig import load_site_config
    from central.workflow.config import load_workflow_config

    try:
        site = load_site_config(config)
        flow = load_workflow_config(workflow)
        flow.check_against(site, str(workflow or "workflow"))
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    return site, flow


# `serve` and `ingest` share it.
BATCH_WINDOW_OPTION: float = typer.Option(
    10.0, "--batch-window-ms", min=0, help="group commit: store what arrived within this many ms of the oldest "
    "message in one transaction (or 500 messages, whichever first); 0: commit what is queued at once")

@app.command("serve")
def serve(
    config: Path = typer.Option(..., "--config", help="site configuration YAML"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    read_database_url: str = typer.Option(
        None, "--read-database-url", help="a PostgreSQL streaming replica of --database-url: statistics, the grid "
        "index, the models' review figures and the access-log export read it while it is at most --read-max-lag-s "
        "behind, else the primary; each such response says where it read and how stale (X-Sharpeyes-Read-* headers)"
    ),
    read_max_lag_s: float = typer.Option(
        30.0, "--read-max-lag-s", min=0, help="how far (seconds) the --read-database-url replica may lag the primary "
        "before those reads go to the primary"
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port"),
    evidence_dir: Path = typer.Option(None, "--evidence-dir", help="default: var/evidence"),
    evidence_store: str = typer.Option(
        None, "--evidence-store", help="instead of --evidence-dir: file:///folder or s3://bucket/prefix?endpoint_url=URL"
        "&region=R (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    ),
    no_ingest: bool = typer.Option(False, "--no-ingest", help="serve the API only; do not connect to MQTT"),
    log_level: str = typer.Option("info", "--log-level"),
    log_format: str = typer.Option(None, "--log-format", help="text (default) or json: one JSON object per line "
                                   "(also SHARPEYES_LOG_FORMAT)"),
    mqtt_client_id: str = typer.Option(
        None, "--mqtt-client-id", help="default: sharpeyes-central-SITE; keep it fixed so the broker keeps the session"
    ),
    workflow: Path = typer.Option(
        None, "--workflow", help="deadlines, dispatch rules, units, webhooks, Open311 (e.g. configs/workflow.yaml)"
    ),
    shared_group: str = typer.Option(
        None, "--shared-group", help="ingest through $share/GROUP/... alongside `central ingest` workers"
    ),
    batch_window_ms: float = BATCH_WINDOW_OPTION,
    demo: bool = typer.Option(
        False, "--demo", help="a demonstration on one machine: default passwords, a generated token key and "
        "anonymous Open311 are accepted, the API docs need no login, and every page says DEMO"
    ),
) -> None:
    """Run migrations, load users and grid from CONFIG, start the MQTT ingest and the web API.

    Outside --demo it refuses to start (exit 2, naming each problem and its fix) with a default or
    short password, a missing or weak token key, or Open311 intake without a key."""
    import logging

    import uvicorn

    from central.server import build_central
    from central.store.db import default_database_url, var_dir

    setup_logging(log_level, log_format)
    log = logging.getLogger("central")
    site, flow = _load_configuration(config, workflow)
    _check_secrets(site, flow, demo)
    if evidence_dir is not None and evidence_store is not None:
        typer.echo("give --evidence-dir or --evidence-store, not both", err=True)
        raise typer.Exit(2)
    if evidence_store is not None:
        from central.evidence.store import EvidenceStoreURLError, open_evidence_store

        try:
            open_evidence_store(evidence_store)  # a bad URL fails here, before any migration runs
        except EvidenceStoreURLError as exc:
            typer.echo(f"--evidence-store: {exc}", err=True)
            raise typer.Exit(2) from None
    root = var_dir()
    from broker.configbase import ConfigError
    from central.auth.tokens import TokenKeyError
    from central.store.read_replica import check_read_urls

    try:
        check_read_urls(database_url or default_database_url(), read_database_url, read_max_lag_s)
    except ValueError as exc:
        typer.echo(f"central serve: {exc}", err=True)
        raise typer.Exit(2) from None

    try:
        central = build_central(
            site,
            database_url or default_database_url(),
            evidence_store or evidence_dir or root / "evidence",
            root,
            ingest=not no_ingest,
            client_id=mqtt_client_id,
            workflow=flow,
            shared_group=shared_group,
            demo=demo,
            batch_window_s=batch_window_ms / 1000,
            config_path=str(config),
            read_database_url=read_database_url,
            read_max_lag_s=read_max_lag_s,
        )
    except TokenKeyError as exc:
        typer.echo(f"central serve: {exc}", err=True)
        raise typer.Exit(2) from None
    except ConfigError as exc:  # the site file's edges, taken into an empty inventory, were refused
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    central.start_ingest()
    central.start_background()

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                log.info("central ready on http://%s:%s", host, port)

        async def shutdown(self, sockets=None) -> None:
            # Runs before uvicorn re-raises SIGTERM/SIGINT, so the ingest leaves the broker cleanly.
            central.ctx.closing.set()
            await super().shutdown(sockets)
            central.close()
            log.info("central stopped")

    server = _Server(uvicorn.Config(central.app, host=host, port=port, log_level=log_level, access_log=False, log_config=None,
                        timeout_graceful_shutdown=10))
    try:
        server.run()
    finally:
        # uvicorn leaves with SystemExit when it cannot bind its port; without closing central here,
        # the ingest and scheduler threads would keep a process alive that serves nothing.
        if not server.started:
            central.close()
            log.error("central could not serve on http://%s:%s (see the error above); exiting", host, port)
    if not server.started:
        raise typer.Exit(1)


def _check_secrets(site: SiteConfig, flow: WorkflowConfig, demo: bool) -> None:
    """Exit 2 naming every weak secret, unless --demo (then say loudly that this is a demo)."""
    import logging

    from central.auth.secrets_policy import startup_problems
    from central.auth.tokens import TokenKeyError, configured_key

    try:
        key = configured_key()
    except TokenKeyError as exc:
        typer.echo(f"central serve: {exc}", err=True)
        raise typer.Exit(2) from None
    problems = startup_problems(site, flow, key)
    if demo:
        if problems:
            logging.getLogger("central").warning(
                "DEMO MODE (--demo): %d safeguard(s) waived; never run a deployment like this:\n%s",
                len(problems), "\n".join(f"  - {p}" for p in problems))
        return
    if problems:
        typer.echo("central serve refuses to start:\n" + "\n".join(f"  - {p}" for p in problems)
                   + "\n(for a demonstration on one machine only: --demo)", err=True)
        raise typer.Exit(2)


@app.command("migrate")
def migrate(
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
) -> None:
    """Bring the database schema to the newest version."""
    from central.store.db import default_database_url, make_engine
    from central.store.migrate import upgrade

    url = database_url or default_database_url()
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


@app.command("ingest")
def ingest(
    config: Path = typer.Option(..., "--config", help="site configuration YAML"),
    database_url: str = typer.Option(None, "--database-url", help="PostgreSQL for several workers"),
    evidence_dir: Path = typer.Option(None, "--evidence-dir", help="default: var/evidence"),
    evidence_store: str = typer.Option(None, "--evidence-store", help="instead of --evidence-dir: file:// or s3:// URL "
                                       "(as for `serve`)"),
    workflow: Path = typer.Option(None, "--workflow", help="the same workflow file `serve` uses"),
    shared_group: str = typer.Option("central", "--shared-group", help="MQTT 5 shared subscription group"),
    batch_window_ms: float = BATCH_WINDOW_OPTION,
    slots: int = typer.Option(
        None, "--slots", min=1, help="client-id slots shared by all workers (give every worker the same N, at least "
        "the number of workers): each worker holds free slots through leases in the database and takes over a "
        "dead worker's within seconds, so nothing the broker queued for it is stranded"),
    slot_prefix: str = typer.Option(None, "--slot-prefix", help="the slots' client ids are PREFIX-slot-K "
                                    "(default: central-SITE)"),
    mqtt_client_id: str = typer.Option(
        None, "--mqtt-client-id", help="instead of --slots: one fixed client id, unique and stable per worker, so the "
        "broker keeps its session (a worker that never comes back strands what the broker queued for it)"
    ),
    broker_address: list[str] = typer.Option(
        None, "--broker-address", help="HOST:PORT of a core broker, repeatable (a core and its standby): each client "
        "id is connected to every one (default: the site file's broker; protocol, credentials and TLS from there)"),
    session_expiry_s: int = typer.Option(
        None, "--session-expiry", min=0, help="MQTT session expiry in seconds (default: 7 days); 0: a session that "
        "ends with its connection (what the broker held for it is dropped; only the edges' receipts recover it)"),
    log_level: str = typer.Option("info", "--log-level"),
    log_format: str = typer.Option(None, "--log-format", help="text (default) or json: one JSON object per line "
                                   "(also SHARPEYES_LOG_FORMAT)"),
) -> None:
    """Run only an ingest worker: MQTT in, rows committed, acknowledged after commit. No web API.

    Start several against one PostgreSQL, each with the same --slots N; the broker spreads messages
    over them ($share/GROUP/...). Or one fixed --mqtt-client-id per worker (not both).
    """
    import logging
    import signal
    import threading

    from sqlalchemy.exc import IntegrityError

    from central.ingest import receiver
    from central.ingest import slots as slot_rules
    from central.ingest.worker import IngestWorker, WorkerOptions, follow_site, ingest_deps, parse_address
    from central.server import build_central
    from central.store.db import default_database_url, var_dir

    setup_logging(log_level, log_format)
    log = logging.getLogger("central.ingest")
    site, flow = _load_configuration(config, workflow)
    if site.broker.protocol != "5" and shared_group:
        typer.echo("shared subscriptions need MQTT 5 (broker.protocol: 5)", err=True)
        raise typer.Exit(2)
    if (slots is None) == (mqtt_client_id is None):
        typer.echo("give --slots N (client-id slots shared by all workers) or --mqtt-client-id ID (one fixed client "
                   "id)" + (", not both" if slots is not None else ""), err=True)
        raise typer.Exit(2)
    names = None
    if slots is not None:
        if not shared_group:
            typer.echo("--slots needs a shared subscription group (--shared-group): without one every slot would "
                       "get every message", err=True)
            raise typer.Exit(2)
        names = slot_rules.SlotNames(slot_prefix or f"central-{site.site}", slots)
        if (problem := names.problem()) is not None:
            typer.echo(problem, err=True)
            raise typer.Exit(2)
    elif slot_prefix is not None:
        typer.echo("--slot-prefix goes with --slots", err=True)
        raise typer.Exit(2)
    try:
        brokers = [parse_address(a, site.broker) for a in broker_address] if broker_address else [site.broker]
    except ValueError as exc:
        typer.echo(f"--broker-address {exc}", err=True)
        raise typer.Exit(2) from None
    if evidence_dir is not None and evidence_store is not None:
        typer.echo("give --evidence-dir or --evidence-store, not both", err=True)
        raise typer.Exit(2)
    if evidence_store is not None:
        _evidence_store_or_exit(evidence_store, None)  # a bad URL exits here, before any migration
    root = var_dir()
    for attempt in (1, 2, 3):
        try:
            central = build_central(site, database_url or default_database_url(),
                                    evidence_store or evidence_dir or root / "evidence", root, ingest=False,
                                    workflow=flow)
            break
        except IntegrityError:  # workers started together on an empty database: another took the site file in
            if attempt == 3:
                raise
            log.info("another central process set the database up meanwhile; starting again")
    ctx = central.ctx
    deps = ingest_deps(ctx.site or site, ctx.sessions, ctx.evidence, ctx.feed, central.workflow, ctx.metrics)
    if ctx.inventory is not None:
        ctx.inventory.on_change.append(lambda current: follow_site(deps, current))
    worker = IngestWorker(deps, WorkerOptions(
        brokers=brokers, shared_group=shared_group or None, names=names, client_id=mqtt_client_id,
        batch_window_s=batch_window_ms / 1000,
        session_expiry_s=receiver.SESSION_EXPIRY_S if session_expiry_s is None else session_expiry_s))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    central.start_ingest()  # the inventory follower (the ingests are the worker's)
    worker.start()
    where = ", ".join(f"{b.host}:{b.port}" for b in brokers)
    if names is None:
        if worker.wait_connected(30):
            log.info("ingest worker %s ready on %s", mqtt_client_id, where)
    else:
        log.info("ingest worker %s started: %d slot(s) %s-slot-0..%d on %s", worker.holder, slots, names.prefix,
                 names.slots - 1, where)
    while not stop.wait(0.5):
        pass
    worker.stop()
    central.close()
    log.info("ingest worker stopped")


audit_app = typer.Typer(help="the hash-chained audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    incident: int = typer.Option(None, "--incident", help="only this incident's chain"),
) -> None:
    """Recompute every incident's hash chain; exit 1 and name each broken record when tampered."""
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.workflow import audit

    engine = make_engine(database_url or default_database_url())
    try:
        with make_session_factory(engine)() as session:
            count, breaks = audit.verify(session, incident)
    finally:
        engine.dispose()
    for b in breaks:
        typer.echo(f"incident {b.incident_id} record {b.seq} (row {b.record_id}): {b.problem}", err=True)
    if breaks:
        typer.echo(f"audit chain BROKEN: {len(breaks)} problem(s) in {count} record(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {count} record(s)")


def _evidence_store_or_exit(url: str | None, folder: Path | None) -> EvidenceBackend:
    """The evidence store named by --evidence-store or --evidence-dir (default var/evidence); exit 2 naming a bad URL."""
    from central.evidence.store import EvidenceStoreURLError, open_evidence_store
    from central.store.db import var_dir

    try:
        return open_evidence_store(url or folder or var_dir() / "evidence")
    except EvidenceStoreURLError as exc:
        typer.echo(f"--evidence-store: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("retention")
def retention_command(
    workflow: Path = typer.Option(None, "--workflow", help="the workflow file whose retention: section applies"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    evidence_dir: Path = typer.Option(None, "--evidence-dir", help="default: var/evidence"),
    evidence_store: str = typer.Option(None, "--evidence-store", help="instead of --evidence-dir: file:// or s3:// URL"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print what would be deleted; delete nothing"),
) -> None:
    """Delete the evidence the retention policy no longer allows to keep (each deletion audited);
    `serve` does the same every retention.interval_s. With --dry-run, only list it."""
    from rich.console import Console
    from rich.table import Table

    from broker.configbase import ConfigError
    from central.evidence import retention
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.store.migrate import upgrade
    from central.store.tables import utcnow
    from central.workflow.config import load_workflow_config

    try:
        policy = load_workflow_config(workflow).retention
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    store = _evidence_store_or_exit(evidence_store, evidence_dir)
    engine = make_engine(database_url or default_database_url())
    try:
        upgrade(engine)
        now = utcnow()
        with make_session_factory(engine)() as session:
            purge = retention.plan(session, policy, now)
            table = Table(title=("would delete" if dry_run else "deleting") + f" {len(purge.items)} blob(s), "
                          f"{purge.bytes / 1e6:.1f} MB")
            for column in ("sha256", "bytes", "incidents", "why"):
                table.add_column(column)
            for item in purge.items:
                table.add_row(item.sha256[:16] + "…", str(item.size), ", ".join(map(str, item.incidents)) or "—", item.why)
            Console().print(table)
            if not dry_run:
                done = retention.apply(session, store, purge, now)
                typer.echo(f"deleted {done} blob(s); each deletion is in its incidents' audit records")
    finally:
        engine.dispose()


dataset_app = typer.Typer(help="Training sets from the monitors' reviews.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("export")
def dataset_export_command(
    out: Path = typer.Option(..., "--out", help="folder to write the YOLO-layout set into"),
    since: str = typer.Option(None, "--since", help="only pictures observed on or after this date (YYYY-MM-DD)"),
    hazard: str = typer.Option(None, "--hazard", help="only this hazard (e.g. ebike_indoor)"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    evidence_dir: Path = typer.Option(None, "--evidence-dir", help="default: var/evidence"),
    evidence_store: str = typer.Option(None, "--evidence-store", help="instead of --evidence-dir: file:// or s3:// URL"),
) -> None:
    """Write the reviewed pictures (raw frames, the latest label of each incident) as a YOLO-layout
    dataset with manifest.json and a camera-day split; the frames are held against the retention purge
    (central/learning/dataset_export.py). Train on it with `sharpeyes models train --data OUT`."""
    import datetime as dt

    from central.learning.dataset_export import export
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.store.migrate import upgrade
    from central.store.tables import utcnow

    try:
        start = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC) if since else None
    except ValueError:
        typer.echo(f"--since {since!r}: not a date (fix: --since 2026-12-01)", err=True)
        raise typer.Exit(2) from None
    store = _evidence_store_or_exit(evidence_store, evidence_dir)
    engine = make_engine(database_url or default_database_url())
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            summary = export(session, store, out, since=start, hazard=hazard, now=utcnow())
    finally:
        engine.dispose()
    typer.echo(f"{summary.pictures} pictures, {summary.boxes} boxes ({', '.join(summary.classes)}) in {out}; "
               f"{summary.held_out} held out by camera and day")
    if summary.missing:
        typer.echo(f"{len(summary.missing)} reviewed frame(s) are no longer in the evidence store: "
                   + ", ".join(s[:12] for s in summary.missing), err=True)
