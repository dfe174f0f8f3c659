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
    from broker.configbase import ConfigError
    from broker.siteconfig import load_site_config

    try:
        site = load_site_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    cameras = sum(len(e.cameras) for e in site.edges)
    typer.echo(f"{config}: ok (site {site.site}, {len(site.edges)} edges, {cameras} cameras, {len(site.grid)} grid cells)")


@app.command("config")
def config(
    site_file: Path = typer.Option(..., "--site", help="site configuration YAML"),
    out: Path = typer.Option(..., "--out", help="folder for mosquitto.conf, passwd, acl and secrets/"),
    plain_port: int = typer.Option(1883, "--plain-port", help="plain listener for local tools"),
    plain_bind: str = typer.Option("127.0.0.1", "--plain-bind", help="keep it on loopback: no TLS there"),
    tls_port: int = typer.Option(8883, "--tls-port", help="TLS listener for edges and remote services"),
    tls_bind: str = typer.Option("0.0.0.0", "--tls-bind"),
    no_tls: bool = typer.Option(False, "--no-tls", help="loopback-only broker without the TLS listener"),
    certs: Path = typer.Option(None, "--certs", help="folder from `sharpeyes broker ca` (default: OUT/certs)"),
    require_client_cert: bool = typer.Option(False, "--require-client-cert", help="TLS clients must show a certificate"),
    mount_root: Path = typer.Option(None, "--mount-root", help="where OUT is mounted for the broker, e.g. /mosquitto/config"),
    data_dir: Path = typer.Option(None, "--data-dir", help="persistence folder as the broker sees it (default: OUT/data)"),
    log_dest: str = typer.Option(None, "--log-dest", help="e.g. stdout in a container (default: a file in the data folder)"),
    run_as: str = typer.Option(None, "--user", help="account Mosquitto keeps when started as root"),
    bridge: list[str] = typer.Option(
        [], "--bridge", help="a district broker that bridges into this one: adds account bridge.NAME (repeat)"
    ),
) -> None:
    """Write a locked Mosquitto 2 configuration (listeners, passwords, ACL, queues) for a site.

    Passwords come from SHARPEYES_MQTT_PASSWORD_<USER> (e.g. SHARPEYES_MQTT_PASSWORD_EDGE_1,
    SHARPEYES_MQTT_PASSWORD_CENTRAL, SHARPEYES_MQTT_PASSWORD_WORKER_WANG_FANG), else from an
    earlier run's OUT/secrets/<user>.password, else are generated once; all are kept there (0600).
    """
    from broker.brokerconf import BrokerConfigError, BrokerLayout, write_broker_config
    from broker.configbase import ConfigError
    from broker.siteconfig import load_site_config

    try:
        site = load_site_config(site_file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    layout = BrokerLayout(
        plain_port=plain_port,
        plain_bind=plain_bind,
        tls_port=None if no_tls else tls_port,
        tls_bind=tls_bind,
        certs_dir=certs,
        require_client_certificate=require_client_cert,
        data_dir=data_dir,
        mount_root=mount_root,
        log_dest=log_dest,
        user=run_as,
        bridges=tuple(bridge),
    )
    try:
        result = write_broker_config(site, out, layout)
    except BrokerConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {result.conf}, {result.password_file.name}, {result.acl_file.name} for site {site.site}")
    for account in result.accounts:
        typer.echo(
            f"  {account.role.value:7} {account.username:24} password: {result.sources[account.username]:11} "
            f"-> {result.secrets_dir / (account.username + '.password')}"
        )
    if no_tls:
        typer.echo("  no TLS listener: only clients on this host can connect")


@app.command("ca")
def ca(
    out: Path = typer.Option(..., "--out", help="folder for ca.crt/ca.key, server.crt/server.key, client-*.crt/key"),
    server_name: list[str] = typer.Option(
        [], "--server-name", help="a DNS name or IP clients use to reach the broker (repeat); localhost, 127.0.0.1 "
        "and mosquitto are always included"
    ),
    client: list[str] = typer.Option([], "--client", help="issue a client certificate for this name (repeat)"),
    days: int = typer.Option(825, "--days", min=1),
) -> None:
    """Create a DEVELOPMENT certificate authority and the broker's TLS certificates (keys 0600).

    The CA is kept if OUT already has one, so certificates issued earlier stay valid.
    """
    from broker.ca import create_dev_pki

    issued = create_dev_pki(out, server_names=server_name, clients=client, days=days)
    for name, files in issued.items():
        typer.echo(f"{name:20} {files.cert}  (key {files.key})")
    typer.echo("development CA: use your organisation's CA in production (see docs/deployment.md)")
