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
from sharpeyes.demo_cli import demo

app = typer.Typer(help="sharpeyes: Sharp Eyes camera hazards to grid-governance incidents.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")
app.add_typer(central_app, name="central")
app.add_typer(broker_app, name="broker")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.command("demo")(demo)
app.command("chaos")(chaos)
