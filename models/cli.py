"""`sharpeyes models ...`: list and verify the detector weights."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from broker.zoneconfig import ZoneConfig
from models.evaluation import Evaluation
from models.registry import ChecksumMismatch, ModelNotFound, load_registry, resolve_model, search_dirs

# The zones' default min_score: the threshold the edge really alarms at.
DEFAULT_CONF = float(ZoneConfig.model_fields["min_score"].default)
app = typer.Typer(help="Detector model registry.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_models(
    eval_data: Path = typer.Option(None, "--eval", help="also measure every model on this YOLO-layout dataset"),
    conf: float = typer.Option(DEFAULT_CONF, "--conf", min=0.0, max=1.0, help="operating threshold for --eval"),
) -> None:
    """List the registered models and where each resolves (with --eval DIR: their accuracy there)."""
    table = Table("name", "decoder", "input", "licence", "file", "status")
    usable = []
    for entry in load_registry().models:
        try:
            status = str(resolve_model(entry.name).path)
            usable.append(entry.name)
        except (ModelNotFound, ChecksumMismatch) as exc:
            status = f"[red]{exc}[/red]"
        table.add_row(entry.name, entry.decoder, "x".join(map(str, entry.input_size)), entry.licence, entry.file, status)
    console.print(table)
    console.print("searched: " + ", ".join(str(d) for d in search_dirs()))
    if eval_data is not None:
        for name in usable:
            _print_evaluation(_evaluate(name, eval_data, conf))


def _evaluate(model: str, data: Path, conf: float) -> Evaluation:
    from broker.configbase import ConfigError
    from edge.detector import load_detector
    from models.evaluation import LOW_SCORE, evaluate, load_dataset

    try:
        dataset = load_dataset(data)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return evaluate(load_detector(model, score_threshold=LOW_SCORE, intra_op_threads=1), dataset, conf=conf)


def _print_evaluation(ev: Evaluation) -> None:
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    table = Table("class", "labelled", "precision", "recall", "AP50", "AP50-95",
                  title=f"{ev.model} on {ev.dataset}: {ev.images} images, threshold {ev.conf}, {ev.cpu_ms_per_image} ms CPU/image")
    for c in ev.classes:
        table.add_row(c.name, str(c.labelled), fmt(c.precision), fmt(c.recall), fmt(c.ap50), fmt(c.ap50_95))
    console.print(table)
    hazards = Table("hazard class", "model labels", "labelled", "found", "recall", "false boxes/image", "image hit rate")
    for h in ev.hazards:
        hazards.add_row(h.hazard_class, ", ".join(h.model_labels), str(h.labelled), str(h.found), fmt(h.recall),
                        f"{h.false_boxes_per_image:.3f}", fmt(h.image_hit_rate))
    console.print(hazards)


@app.command("eval")
def eval_model(
    model: str = typer.Option("yolov8n", "--model", help="a registered model"),
    data: Path = typer.Option(..., "--data", help="YOLO-layout dataset: data.yaml (names), images/, labels/"),
    conf: float = typer.Option(DEFAULT_CONF, "--conf", min=0.0, max=1.0, help="operating threshold (the zones' min_score)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the tables"),
) -> None:
    """Per class precision, recall, AP50, AP50-95; per hazard recall, false boxes per image and image
    hit rate at the operating threshold; CPU ms per image (models/evaluation.py)."""
    import json

    ev = _evaluate(model, data, conf)
    if as_json:
        print(json.dumps(ev.to_json()))
    else:
        _print_evaluation(ev)


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
