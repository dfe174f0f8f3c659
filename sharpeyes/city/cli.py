"""`sharpeyes city`: the city layout on this machine, with its four faults, for people to watch."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edge.publisher import RECEIPT_TIMEOUT_S


def city(
    events: int = typer.Option(2100, "--events", min=12, help="events the edges write (episodes of 3)"),
    edges: int = typer.Option(4, "--edges", min=2, help="edges, spread over the districts"),
    seconds: float = typer.Option(90.0, "--seconds", min=20, help="how long the edges take to write them; "
                                  "the faults fall evenly within"),
    workers: int = typer.Option(3, "--workers", min=2, help="central ingest workers (one is killed for good)"),
    receipt_timeout: float = typer.Option(RECEIPT_TIMEOUT_S, "--receipt-timeout",
                                          help="the edge's wait for central's receipt before resending"),
    workdir: Path = typer.Option(None, "--workdir", help="keep every part's logs and data here "
                                 "(default: a temporary folder, removed afterwards)"),
    media: Path = typer.Option(None, "--media", help="footage for the evidence frames (default: ../shared/media)"),
    as_json: bool = typer.Option(False, "--json", help="the result as one JSON object"),
) -> None:
    """Run the city layout on loopback and break it: two district Mosquittos bridged to a core with a
    standby, ingest workers on lease-held slots, two API and scheduler processes, PostgreSQL with a
    streaming replica, SeaweedFS's S3, and edges with their real outboxes.

    Faults: an ingest worker kill -9 for good, the deadline lease holder kill -9, the core broker
    kill -9, the replica stopped. Prints a table per fault (written, stored, lost, duplicated, and
    event-to-receipt latency) and the checks; exits 1 when a check fails, 2 when the run could not
    be set up.
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from sharpeyes.chaos.parts import ChaosError
    from sharpeyes.city.plan import CityOptions, CityPlanError
    from sharpeyes.city.scenario import run_city

    # Wide enough for the table when the output is a log file rather than a terminal.
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 150)
    try:
        opts = CityOptions(events=events, edges=edges, seconds=seconds, workers=workers,
                           receipt_timeout_s=receipt_timeout)
    except CityPlanError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        footage = media or Path(__file__).resolve().parents[3] / "shared" / "media"
        result = run_city(opts, footage, workdir, progress=lambda line: console.print(line))
    except ChaosError as exc:
        typer.echo(f"city: could not run: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        raise typer.Exit(0 if result.ok else 1)
    table = Table(title="events by the fault window they were written in (latency: written to central's receipt)")
    for column in ("fault", "written", "stored", "lost", "duplicated", "unreceipted", "p50 s", "p99 s", "max s"):
        table.add_column(column, justify="left" if column == "fault" else "right")
    for row in result.phases:
        table.add_row(row.phase, *(str(v) if v is not None else "-" for v in (
            row.written, row.stored, row.lost, row.duplicated, row.unreceipted, row.p50_s, row.p99_s, row.max_s)))
    console.print(table)
    for check in result.checks:
        console.print(f"{'[green]ok[/green]  ' if check.ok else '[red]FAIL[/red]'} {check.name}: {check.detail}")
    console.print(f"{result.seconds:.0f} s in all")
    raise typer.Exit(0 if result.ok else 1)
