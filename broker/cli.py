"""`sharpeyes broker ...`: the wire contract and broker configuration."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="MQTT contract and broker configuration.", no_args_is_help=True)


@app.command("schema")
def schema(out: Path = typer.Option(None, help="write one <schema>.json per payload into this folder")) -> None:
    """Print (or write) the JSON Schema of every v1 payload."""
    from broker.payloads import json_schemas

    schemas = json_schemas()
    if out is None:
        typer.echo(json.dumps(schemas, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, body in schemas.items():
        (out / f"{name.replace('/', '-')}.json").write_text(json.dumps(body, indent=2) + "\n")
    typer.echo(f"wrote {len(schemas)} schemas to {out}")


@app.command("check-config")
def check_config(config: Path) -> None:
    """Validate a site configuration file and report every problem."""
    from broker.siteconfig import ConfigError, load_site_config

    try:
        site = load_site_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    cameras = sum(len(e.cameras) for e in site.edges)
    typer.echo(f"{config}: ok (site {site.site}, {len(site.edges)} edges, {cameras} cameras, {len(site.grid)} grid cells)")
