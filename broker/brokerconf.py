"""`sharpeyes broker config`: a complete, locked Mosquitto 2 configuration from a site configuration.

What it writes into the output folder:

- ``mosquitto.conf``: a loopback plain listener for local tools, a TLS listener for everything
  else, anonymous access off, persistence on, queue limits by count and bytes.
- ``passwd`` (0600): one `$7$` hash per account (central, each edge, each worker device).
- ``acl``: each account's topics (see `broker.acl`).
- ``secrets/<user>.password`` (0600): the plain passwords to hand to each device.

Paths inside ``mosquitto.conf`` are written as the broker will see them (`mount_root`), so the
same folder works mounted into a container at another path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from broker.acl import render_acl
from broker.credentials import Account, accounts_for, render_password_file, resolve_secret, write_private
from broker.mosquitto import TlsListener, render_mosquitto_conf
from broker.siteconfig import SiteConfig


@dataclass(frozen=True)
class BrokerLayout:
    """Where the broker listens and where it finds its files, as seen from inside the broker."""

    plain_port: int = 1883
    plain_bind: str = "127.0.0.1"
    tls_port: int | None = 8883
    tls_bind: str = "0.0.0.0"
    certs_dir: Path | None = None  # holds ca.crt, server.crt, server.key; default: <out>/certs
    require_client_certificate: bool = False
    data_dir: Path | None = None  # persistence; default: <mount_root>/data
    mount_root: Path | None = None  # where <out> appears to the broker; default: <out> itself
    log_dest: str | None = None  # default: a log file in data_dir
    user: str | None = None  # account Mosquitto keeps when started as root
    bridges: tuple[str, ...] = ()  # district brokers bridging into this one: one `bridge.<name>` account each


@dataclass
class BrokerConfigResult:
    conf: Path
    password_file: Path
    acl_file: Path
    secrets_dir: Path
    accounts: list[Account]
    sources: dict[str, str] = field(default_factory=dict)  # username -> environment / kept / generated


class BrokerConfigError(ValueError):
    """The configuration cannot be written; the message names the fix."""


def write_broker_config(
    site: SiteConfig, out: Path, layout: BrokerLayout | None = None, environ: dict[str, str] | None = None
) -> BrokerConfigResult:
    layout = layout or BrokerLayout()
    out = Path(out).absolute()
    root = Path(layout.mount_root) if layout.mount_root is not None else out
    try:
        accounts = accounts_for(site, list(layout.bridges))
    except ValueError as exc:
        raise BrokerConfigError(str(exc)) from None

    tls = None
    if layout.tls_port is not None:
        host_certs = Path(layout.certs_dir).absolute() if layout.certs_dir is not None else out / "certs"
        missing = [name for name in ("ca.crt", "server.crt", "server.key") if not (host_certs / name).is_file()]
        if missing:
            raise BrokerConfigError(
                f"{host_certs} lacks {', '.join(missing)} for the TLS listener (fix: run "
                f"`sharpeyes broker ca --out {host_certs}` first, or pass --no-tls for a loopback-only broker)"
            )
        # Certificates under <out> move with it; certificates elsewhere keep their absolute path.
        broker_certs = root / host_certs.relative_to(out) if host_certs.is_relative_to(out) else host_certs
        tls = TlsListener(
            port=layout.tls_port,
            bind=layout.tls_bind,
            cafile=broker_certs / "ca.crt",
            certfile=broker_certs / "server.crt",
            keyfile=broker_certs / "server.key",
            require_certificate=layout.require_client_certificate,
        )

    secrets_dir = out / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)  # plain-text passwords: the owner only, whatever the umask
    passwords: dict[str, str] = {}
    sources: dict[str, str] = {}
    for account in accounts:
        try:
            secret = resolve_secret(account, secrets_dir, environ)
        except ValueError as exc:
            raise BrokerConfigError(str(exc)) from None
        passwords[account.username] = secret.password
        sources[account.username] = secret.source

    password_file = out / "passwd"
    acl_file = out / "acl"
    conf = out / "mosquitto.conf"
    write_private(password_file, render_password_file(passwords))
    acl_file.write_text(render_acl(site.site, accounts), encoding="utf-8")
    data_dir = Path(layout.data_dir) if layout.data_dir is not None else root / "data"
    if layout.data_dir is None:
        (out / "data").mkdir(parents=True, exist_ok=True)
    conf.write_text(
        render_mosquitto_conf(
            port=layout.plain_port,
            bind=layout.plain_bind,
            data_dir=data_dir,
            allow_anonymous=False,
            password_file=root / "passwd",
            acl_file=root / "acl",
            user=layout.user,
            tls=tls,
            log_dest=layout.log_dest,
        ),
        encoding="utf-8",
    )
    return BrokerConfigResult(conf, password_file, acl_file, secrets_dir, accounts, sources)
