"""`sharpeyes demo`: broker, RTSP footage, central and one edge on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

import typer


def demo(
    smoke: bool = typer.Option(False, "--smoke", help="headless: wait until both demo hazards are incidents, then exit 0"),
    port: int = typer.Option(None, "--port", help="central's HTTP port (default 8080; --smoke: a free port)"),
    media_dir: Path = typer.Option(None, "--media-dir", help="footage folder (default ../shared/media)"),
    broker: str = typer.Option("auto", "--broker", help="auto | mosquitto | embedded (amqtt, MQTT 3.1.1, demo only)"),
    var_dir: Path = typer.Option(None, "--var-dir", help="state folder (default var/demo; --smoke empties it)"),
    deadline: float = typer.Option(180.0, "--deadline", help="--smoke: seconds to wait for both hazards"),
) -> None:
    """Run the whole product on one machine: broker, RTSP footage, central and one edge."""
    from sharpeyes.demo.processes import run_demo

    if broker not in ("auto", "mosquitto", "embedded"):
        typer.echo(f"--broker must be auto, mosquitto or embedded, not {broker!r}", err=True)
        raise typer.Exit(2)
    choice = cast(Literal["auto", "mosquitto", "embedded"], broker)  # checked just above
    code = run_demo(smoke=smoke, http_port=port, media_dir=media_dir, broker=choice,
                    var_dir=var_dir, deadline_s=deadline)
    raise typer.Exit(code)
