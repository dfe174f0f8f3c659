"""`sharpeyes models ...`: list and verify the detector weights."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from models.registry import ChecksumMismatch, ModelNotFound, load_registry, resolve_model, search_dirs

app = typer.Typer(help="Detector model registry.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_models() -> None:
    """List the registered models and where each resolves."""
    table = Table("name", "decoder", "input", "licence", "file", "status")
    for entry in load_registry().models:
        try:
            status = str(resolve_model(entry.name).path)
        except (ModelNotFound, ChecksumMismatch) as exc:
            status = f"[red]{exc}[/red]"
        table.add_row(entry.name, entry.decoder, "x".join(map(str, entry.input_size)), entry.licence, entry.file, status)
    console.print(table)
    console.print("searched: " + ", ".join(str(d) for d in search_dirs()))


@app.command("verify")
def verify(name: list[str] = typer.Argument(None, help="models to verify (default: all)")) -> None:
    """Check every model's weights exist and match the registry's sha256; exit 1 otherwise."""
    names = name or [m.name for m in load_registry().models]
    failed = 0
    for model_name in names:
        try:
            resolved = resolve_model(model_name)
            console.print(f"[green]ok[/green] {model_name}: {resolved.path} sha256 {resolved.entry.sha256}")
        except (ModelNotFound, ChecksumMismatch) as exc:
            failed += 1
            console.print(f"[red]FAILED[/red] {model_name}: {exc}")
    raise typer.Exit(1 if failed else 0)
