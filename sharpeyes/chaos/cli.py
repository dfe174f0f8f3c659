"""`sharpeyes chaos`: the fault suite (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from edge.publisher import RECEIPT_TIMEOUT_S


def chaos(
    scenario: list[str] = typer.Option(None, "--scenario", help="run only these (repeatable); default: all"),
    events: int = typer.Option(2000, "--events", min=10, help="events published per scenario"),
    partition_s: float = typer.Option(60.0, "--partition-s", help="length of the network cut (600: the full 10 min)"),
    receipt_timeout: float = typer.Option(RECEIPT_TIMEOUT_S, "--receipt-timeout",
                                          help="the edge's wait for a receipt before resending (30: the product's default)"),
    workdir: Path = typer.Option(None, "--workdir", help="keep logs and databases here (default: a temporary folder)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per scenario"),
    without_receipts: bool = typer.Option(False, "--without-receipts",
                                          help="control run: the edge ignores receipts and deletes on PUBACK, as before"),
) -> None:
    """Break real parts (Mosquitto, central, the edge's publisher, the link) and count what survives.

    Each scenario starts clean and prints scenario, published, stored, lost, duplicated, seconds.
    Exits 1 when any scenario lost or duplicated an event, 2 when one could not run.
    """
    import json

    from sharpeyes.chaos.parts import ChaosError
    from sharpeyes.chaos.scenarios import SCENARIOS, ChaosOptions, run_scenario

    names = scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        typer.echo(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}", err=True)
        raise typer.Exit(2)
    opts = ChaosOptions(events=events, receipt_timeout_s=receipt_timeout, partition_s=partition_s, workdir=workdir,
                        receipts=not without_receipts)
    failed = broken = False
    for name in names:
        try:
            result = run_scenario(name, opts)
        except ChaosError as exc:
            broken = True
            typer.echo(json.dumps({"scenario": name, "error": str(exc)}) if as_json else f"{name}: ERROR {exc}")
            continue
        failed = failed or result.lost > 0 or result.duplicated > 0
        if as_json:
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            typer.echo(f"{name:28} published {result.published:6}  stored {result.stored:6}  lost {result.lost:4}  "
                       f"duplicated {result.duplicated:4}  {result.seconds:7.1f} s  {result.notes}")
    raise typer.Exit(2 if broken else 1 if failed else 0)
