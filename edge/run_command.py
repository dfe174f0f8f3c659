"""`sharpeyes edge run`: a live edge node until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from types import FrameType


def run(
    config: Path = typer.Option(..., "--config", help="site configuration YAML"),
    edge: str = typer.Option(..., "--edge", help="id of this edge in the site configuration"),
    outbox: Path = typer.Option(None, "--outbox", help="outbox database (default var/edge-<id>-outbox.db)"),
    model: str = typer.Option(None, "--model", help="override every camera's model"),
    log_level: str = typer.Option("INFO", "--log-level"),
    log_format: str = typer.Option(None, "--log-format", help="text (default) or json: one JSON object per line "
                                   "(also SHARPEYES_LOG_FORMAT)"),
) -> None:
    """Run a live edge node: RTSP cameras -> detector -> rules -> outbox -> MQTT."""
    from broker.configbase import ConfigError
    from broker.logsetup import setup_logging
    from broker.siteconfig import load_site_config

    setup_logging(log_level, log_format)
    try:
        site = load_site_config(config)
        site.edge(edge).check_environment(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except KeyError as exc:
        typer.echo(f"{config}: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None

    from broker.client import BrokerClientError
    from edge.captions import CaptionFontError, caption_font
    from edge.model_fetch import bring_models
    from edge.node import EdgeNode

    # An edge with an empty model store (another machine) gets its cameras' models from central first.
    if problems := bring_models(site, site.edge(edge), override=model):
        typer.echo(f"{config}: models this edge cannot load:\n" + "\n".join(f"  - {p}" for p in problems), err=True)
        raise typer.Exit(2)

    try:
        caption_font()  # found (or refused) now, not at the first alarm
    except CaptionFontError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None

    try:
        node = EdgeNode(site, edge, outbox or Path("var") / f"edge-{edge}-outbox.db", model=model)
    except BrokerClientError as exc:
        typer.echo(f"{config}: {exc}", err=True)
        raise typer.Exit(2) from None
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    def _reload(signum: int, frame: FrameType | None) -> None:
        # SIGHUP: re-read the file and apply it like a `config` command; a bad file changes nothing.
        try:
            reloaded = load_site_config(config).edge(edge)
            reloaded.check_environment(config)
            if problems := bring_models(node.site, reloaded, override=model):
                raise ConfigError(config, problems)
            node.apply_config(reloaded)
        except (ConfigError, KeyError) as exc:
            logging.getLogger("edge").error("reload of %s refused; keeping the running configuration:\n%s", config, exc)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _reload)
    node.start()
    stopping.wait()
    logging.getLogger("edge").info("stopping edge %s", edge)
    node.stop()
