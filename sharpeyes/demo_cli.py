"""`sharpeyes demo`: placeholder replaced by the demo orchestrator."""

from __future__ import annotations

import typer


def demo(smoke: bool = typer.Option(False, "--smoke", help="run headless, check both hazards, exit")) -> None:
    """Run the whole product on one machine: broker, RTSP footage, central and one edge."""
    raise typer.Exit(1)
