"""`sharpeyes central ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="central commands.", no_args_is_help=True)
