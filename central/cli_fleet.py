"""`sharpeyes central edge-token` and `sharpeyes central inventory ...`: the fleet's commands (the
edges' model-download tokens, and the inventory's import and export), registered by central/cli.py."""

from __future__ import annotations

from pathlib import Path

import typer


def edge_token_command(
    edge: str = typer.Argument(..., help="the edge's id in the site file"),
    config: Path = typer.Option(..., "--config", help="site configuration YAML (the edge must be in it)"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    keep_previous: bool = typer.Option(False, "--keep-previous", help="the edge's earlier tokens keep working "
                                       "(while it is switched over); by default they stop now"),
    revoke_only: bool = typer.Option(False, "--revoke", help="only revoke the edge's tokens; mint none"),
) -> None:
    """Mint the token an edge fetches its models from central with (printed once, on stdout: put it in
    the variable the site file's `central: token_env` names, on that edge's machine). Central keeps
    only its sha256 (central/auth/edge_tokens.py)."""
    from broker.configbase import ConfigError
    from broker.siteconfig import load_site_config
    from central.auth import edge_tokens
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.store.migrate import upgrade
    from central.store.tables import utcnow

    try:
        site = load_site_config(config)
        site.edge(edge)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except KeyError as exc:
        typer.echo(f"{config}: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(database_url or default_database_url())
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            if revoke_only:
                count = edge_tokens.revoke(session, site.site, edge, at=utcnow())
                session.commit()
                typer.echo(f"revoked {count} token(s) of edge {site.site}/{edge}", err=True)
                return
            token = edge_tokens.mint(session, site.site, edge, actor="cli", at=utcnow(), revoke_others=not keep_previous)
    finally:
        engine.dispose()
    typer.echo(token)
    typer.echo(f"token of edge {site.site}/{edge} (shown once; central keeps only its sha256"
               + ("" if keep_previous else "; its earlier tokens no longer work") + ")", err=True)


inventory_app = typer.Typer(help="the edges and cameras in central's database (the source of truth).",
                            no_args_is_help=True)


@inventory_app.command("import")
def inventory_import_command(
    file: Path = typer.Argument(..., help="a site YAML (its edges and cameras), or a camera catalogue .csv"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would change; store nothing"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    edge: str = typer.Option(None, "--edge", help="CSV: the edge of rows without an edge column; YAML: only this edge"),
    site: str = typer.Option(None, "--site", help="default: the inventory's site (or the YAML's site:)"),
    reason: str = typer.Option(None, "--reason", help="kept in each edge's configuration history"),
    retire: bool = typer.Option(False, "--retire", help="confirm the cameras the import retires (listed otherwise)"),
) -> None:
    """Make the inventory what FILE says for the edges it names: one new version per changed edge
    (actor `inventory import`), each with its config command, which a running central sends. A bad
    row or key refuses the whole file, naming every one (exit 2)."""
    from broker.configbase import ConfigError
    from central.fleet.inventory_import import apply, prepare
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.store.migrate import upgrade
    from central.store.tables import utcnow

    engine = make_engine(database_url or default_database_url())
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            try:
                result, _ = prepare(session, file, site=site, edge=edge)
            except ConfigError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from None
            if result.problems:
                typer.echo(f"{file}: refused, nothing stored ({len(result.problems)} problem(s)):\n"
                           + "\n".join(f"  - {p}" for p in result.problems), err=True)
                raise typer.Exit(2)
            assert result.plan is not None
            for step in result.plan.edges:
                typer.echo(f"edge {step.edge}: " + "; ".join(step.lines() or ["settings"]))
            counts = result.plan.counts()
            typer.echo(("would change" if dry_run else "changing") + f" {counts['edges']} edge(s): {counts['added']} "
                       f"camera(s) added, {counts['changed']} changed, {counts['moved']} moved, {counts['retired']} "
                       f"retired; {counts['unchanged_edges']} edge(s) of the file unchanged")
            if result.plan.retired and not retire and not dry_run:
                typer.echo(f"the import retires {len(result.plan.retired)} camera(s) ({', '.join(result.plan.retired[:20])}"
                           f"{' ...' if len(result.plan.retired) > 20 else ''}): run it again with --retire to confirm "
                           "(their incidents and evidence stay)", err=True)
                raise typer.Exit(2)
            if dry_run or not result.plan.edges:
                return
            apply(session, result, reason=reason, at=utcnow())
            typer.echo(f"stored {len(result.versions)} version(s); a running central sends each edge its configuration")
    finally:
        engine.dispose()


@inventory_app.command("export")
def inventory_export_command(
    out: Path = typer.Option(..., "--out", help="the YAML file to write (- for stdout)"),
    database_url: str = typer.Option(None, "--database-url", help="default: sqlite:///var/central.db"),
    site: str = typer.Option(None, "--site", help="default: the inventory's site"),
) -> None:
    """Write the inventory's edges and cameras as site-file YAML that imports to the same state."""
    from broker.configbase import ConfigError
    from central.fleet.inventory_import import export_yaml
    from central.store.db import default_database_url, make_engine, make_session_factory
    from central.store.migrate import upgrade

    engine = make_engine(database_url or default_database_url())
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            try:
                text = export_yaml(session, site)
            except ConfigError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if str(out) == "-":
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
