"""The `sharpeyes` command. Each package contributes its own sub-command group.

Sub-command modules import their heavy dependencies (OpenCV, onnxruntime, SQLAlchemy) inside
the commands, so that an edge-only or central-only install still runs `sharpeyes --help`.
"""

from __future__ import annotations

import typer

from broker.cli import app as broker_app
from central.cli import app as central_app
from edge.cli import app as edge_app
from models.cli import app as models_app
from sharpeyes.bench.cli import app as bench_app
from sharpeyes.chaos.cli import chaos
from sharpeyes.city.cli import city
from sharpeyes.demo_cli import demo

app = typer.Typer(help="sharpeyes: Sharp Eyes camera hazards to grid-governance incidents.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")
app.add_typer(central_app, name="central")
app.add_typer(broker_app, name="broker")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.command("demo")(demo)


@app.command("relay-sim")
def relay_sim(
    port: int = typer.Option(1502, help="TCP port to listen on (a real module listens on 502)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    coils: int = typer.Option(8, min=1, max=64, help="relays on the module"),
    watchdog_s: float = typer.Option(5.0, min=0, help="a coil drops this long after the write that set it; 0: never"),
) -> None:
    """A Modbus TCP relay module with an output watchdog, on loopback (demo, tests, trying docs/actuation.md)."""
    from sharpeyes.relay_sim import run_relay_sim

    run_relay_sim(port, coils, watchdog_s or None, host)

app.command("chaos")(chaos)
app.command("city")(city)
