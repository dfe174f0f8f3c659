"""`sharpeyes models ...`: list, verify, measure, train, gate, promote and roll back detectors."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from broker.zoneconfig import ZoneConfig
from models.evaluation import Evaluation
from models.promotion import FALSE_BOXES_TOLERANCE, VEHICLE_TOLERANCE
from models.registry import ChecksumMismatch, ModelEntry, ModelNotFound, load_registry, resolve_model, search_dirs
from models.training import TrainSettings

# The zones' default min_score: the threshold the edge really alarms at.
DEFAULT_CONF = float(ZoneConfig.model_fields["min_score"].default)
LIFT_AUGMENT_HELP = ("add this many lift-view copies of every training picture (fisheye distortion, a camera high "
                     "in a corner, occlusion by people and doors; models/lift_augment.py), never of the held-out "
                     "part; 0: off")
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
    from models.detector import load_detector
    from models.evaluation import LOW_SCORE, evaluate, load_dataset

    try:
        dataset = load_dataset(data)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        detector = load_detector(model, score_threshold=LOW_SCORE, intra_op_threads=1)
    except (ModelNotFound, ChecksumMismatch) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return evaluate(detector, dataset, conf=conf)


def _print_evaluation(ev: Evaluation) -> None:
    from models.intervals import interval_text

    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    table = Table("class", "labelled", "precision", "95 % CI", "recall", "95 % CI", "AP50", "AP50-95",
                  title=f"{ev.model} on {ev.dataset}: {ev.images} images, threshold {ev.conf}, {ev.cpu_ms_per_image} ms CPU/image")
    for c in ev.classes:
        table.add_row(c.name, str(c.labelled), fmt(c.precision), interval_text(c.true_positives, c.predicted),
                      fmt(c.recall), interval_text(c.true_positives, c.labelled), fmt(c.ap50), fmt(c.ap50_95))
    console.print(table)
    hazards = Table("hazard class", "model labels", "labelled", "found", "recall", "95 % CI", "false boxes/image",
                    "image hit rate", "95 % CI")
    for h in ev.hazards:
        hazards.add_row(h.hazard_class, ", ".join(h.model_labels), str(h.labelled), str(h.found), fmt(h.recall),
                        interval_text(h.found, h.labelled), f"{h.false_boxes_per_image:.3f}", fmt(h.image_hit_rate),
                        interval_text(h.images_hit, h.images_with_object))
    console.print(hazards)
    console.print("95 % CI: Wilson score interval of the counts (models/intervals.py)")


@app.command("eval")
def eval_model(
    model: str = typer.Option("yolov8n", "--model", help="a registered model, or an Ultralytics ONNX export's path (.onnx)"),
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


@app.command("train")
def train_model(
    data: list[Path] = typer.Option(..., "--data", help="YOLO-layout dataset with an ebike class (data.yaml, images/, "
                                    "labels/); repeat to train on several (e.g. a starter set and exported reviews)"),
    base: str = typer.Option("yolov8n", "--base", help="a base under bases: in models/registry.yaml"),
    name: str = typer.Option(..., "--name", help="the new model's name (camera model:, --model flags, bench)"),
    epochs: int = typer.Option(TrainSettings.epochs, "--epochs", min=1),
    imgsz: int = typer.Option(TrainSettings.imgsz, "--imgsz", min=64, help="training and export input size"),
    seed: int = typer.Option(TrainSettings.seed, "--seed", help="split, augmentation and initialisation"),
    held_out: float = typer.Option(TrainSettings.held_out_share, "--held-out", min=0.05, max=0.9,
                                   help="share of the pictures kept apart (whole scene groups)"),
    pseudo_label: bool = typer.Option(True, "--pseudo-label/--no-pseudo-label",
                                      help="label what the dataset leaves out (cars, ...) with the base model"),
    rehearsal: list[Path] = typer.Option(None, "--rehearsal", help="pictures or clips of other scenes the base labels, "
                                         "trained on alongside so that vehicles are not forgotten (default: the shared "
                                         "footage); repeat for several"),
    keep_coco: bool = typer.Option(False, "--keep-coco/--no-keep-coco",
                                   help="train only the new classes' head rows, so that the COCO classes stay the "
                                   "base's exactly (default: fine-tune neck and head; --freeze decides)"),
    lr0: float = typer.Option(None, "--lr0", help="AdamW learning rate (default 0.02 with --keep-coco, else 0.002)"),
    freeze: int = typer.Option(TrainSettings.freeze, "--freeze", min=0, help="layers kept as the base has them"),
    conf: float = typer.Option(DEFAULT_CONF, "--conf", min=0.0, max=1.0, help="operating threshold of the figures"),
    lift_augment: int = typer.Option(TrainSettings.lift_augment, "--lift-augment", min=0, help=LIFT_AUGMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the registered entry as JSON at the end"),
) -> None:
    """Fine-tune BASE on DATA with Ultralytics (CPU, or GPU where present), export ONNX, register it in the
    local model store and measure it against its base on the held-out part (models/training.py)."""
    import json

    from broker.configbase import ConfigError
    from models.promotion import GateUnavailable
    from models.training import TrainingError, train

    settings = TrainSettings(data=tuple(data), base=base, name=name, epochs=epochs, imgsz=imgsz, seed=seed,
                             held_out_share=held_out, pseudo_label=pseudo_label, freeze=freeze, conf=conf,
                             rehearsal=tuple(rehearsal) if rehearsal else None, keep_coco=keep_coco, lr0=lr0,
                             lift_augment=lift_augment)
    say = (lambda line: print(line, file=sys.stderr)) if as_json else console.print  # noqa: E731
    try:
        entry = train(settings, progress=say)
    except (ConfigError, TrainingError, GateUnavailable) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(entry.model_dump(mode="json")))
    else:
        _print_training(entry)


def _print_training(entry: ModelEntry) -> None:
    record = entry.trained or {}
    table = Table("model", "e-bike recall", "found", "false e-bike boxes/image", "image hit rate", "vehicle agreement",
                  title=f"held-out part: {len(record['split']['held_out'])} pictures never trained on "
                        f"(threshold {record['settings']['conf']}); training {record['training_seconds']:.0f} s")
    for figures in (record["base_figures"], record["figures"]):
        hazard = figures["held_out"]["hazards"][0]
        table.add_row(figures["model"], str(hazard["recall"]), f"{hazard['found']}/{hazard['labelled']}",
                      str(hazard["false_boxes_per_image"]), str(hazard["image_hit_rate"]), str(figures["vehicle_agreement"]))
    console.print(table)


@app.command("eval-seeds")
def eval_seeds(
    data: list[Path] = typer.Option(..., "--data", help="YOLO-layout dataset with an ebike class; repeat for several"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="seeds, each also a held-out split: 0,1,2 or 0-2"),
    prefix: str = typer.Option("ebike-seed", "--name-prefix", help="the models are registered as PREFIX-s<seed>"),
    epochs: int = typer.Option(TrainSettings.epochs, "--epochs", min=1),
    imgsz: int = typer.Option(TrainSettings.imgsz, "--imgsz", min=64),
    reuse: bool = typer.Option(False, "--reuse", help="measure PREFIX-s<seed> as registered instead of refusing"),
    conf: float = typer.Option(DEFAULT_CONF, "--conf", min=0.0, max=1.0, help="operating threshold"),
    lift_augment: int = typer.Option(TrainSettings.lift_augment, "--lift-augment", min=0, help=LIFT_AUGMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
) -> None:
    """Train once per seed (each seed is another held-out split) and print the base and the trained
    model on each seed's held-out part, and pooled, with 95 % Wilson intervals (models/seeds.py)."""
    import json

    from broker.configbase import ConfigError
    from models.promotion import GateUnavailable
    from models.seeds import parse_seeds, run_seeds
    from models.training import TrainingError

    say = (lambda line: print(line, file=sys.stderr)) if as_json else console.print  # noqa: E731
    try:
        report = run_seeds(list(data), parse_seeds(seeds), prefix=prefix, epochs=epochs, conf=conf, reuse=reuse,
                           progress=say, imgsz=imgsz, lift_augment=lift_augment)
    except (ConfigError, TrainingError, GateUnavailable, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report.to_json()))
        return
    table = Table("model", "seed", "held-out pictures", "e-bike recall [95 % CI] (found/labelled)",
                  "precision [95 % CI]", "image hit rate [95 % CI]", "false boxes/image",
                  title=f"e-bike figures on each seed's held-out part, threshold {report.conf}, {report.epochs} epochs"
                        + (f", --lift-augment {report.lift_augment}" if report.lift_augment else ""))
    base, trained = report.pooled()
    for rows, total in ((report.base, base), (report.trained, trained)):
        for r in [*rows, total]:
            table.add_row(r.model, "pooled" if r.seed is None else str(r.seed), str(r.pictures), r.recall.text(),
                          r.precision.text(), r.image_hits.text(), f"{r.false_boxes_per_image:.3f}")
    console.print(table)


@app.command("gate")
def gate(
    name: str = typer.Argument(..., help="a model trained here"),
    against: str = typer.Option("yolov8n", "--against", help="the model it would replace"),
    fire_lanes: bool = typer.Option(True, "--fire-lanes/--no-fire-lanes",
                                    help="the cameras watch fire lanes: vehicles must not regress"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The promotion gate alone: NAME against the model it would replace, on NAME's held-out pictures and
    the street clip; exit 1 naming each figure that fails (models/promotion.py). Where AGAINST's figures
    are not in NAME's record yet (registered after NAME was trained), they are measured here and stored
    there, so that central's promotion, which only reads them, can judge (models/gate_figures.py)."""
    import json

    from models.gate_figures import prepare_gate
    from models.promotion import GateUnavailable, judge

    say = (lambda line: print(line, file=sys.stderr)) if as_json else console.print  # noqa: E731
    try:
        prepare_gate(name, against, progress=say)
        verdict = judge(name, against, fire_lanes=fire_lanes)
    except (GateUnavailable, ModelNotFound, ChecksumMismatch) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(verdict.to_json()))
    else:
        table = Table("figure", verdict.current.model, verdict.candidate.model, "rule")
        table.add_row("held-out e-bike recall", str(verdict.current.ebike_recall), str(verdict.candidate.ebike_recall),
                      "not lower")
        table.add_row("false e-bike boxes / image", str(verdict.current.false_boxes_per_image),
                      str(verdict.candidate.false_boxes_per_image), f"at most +{FALSE_BOXES_TOLERANCE}")
        table.add_row("vehicle agreement (street clip)", str(verdict.current.vehicle_agreement),
                      str(verdict.candidate.vehicle_agreement),
                      f"at most -{VEHICLE_TOLERANCE}" if fire_lanes else "not checked (no fire lane)")
        console.print(table)
        for failure in verdict.failures:
            console.print(f"[red]refused[/red]: {failure}")
        if verdict.passed:
            console.print(f"[green]passes[/green]: {name} may replace {against}")
    raise typer.Exit(0 if verdict.passed else 1)


def _central_call(central: str, path: str, body: dict[str, object], token: str | None, user: str | None) -> None:
    """POST BODY to central's API as an admin; print the changes, or exit 1 with central's refusal."""
    import json
    import os

    import httpx

    token = token or os.environ.get("SHARPEYES_TOKEN")
    with httpx.Client(base_url=central.rstrip("/"), timeout=600) as client:
        if token is None:
            if user is None:
                console.print("[red]give --token (or SHARPEYES_TOKEN), or --user with SHARPEYES_PASSWORD[/red]")
                raise typer.Exit(2)
            password = os.environ.get("SHARPEYES_PASSWORD") or typer.prompt(f"password of {user}", hide_input=True)
            login = client.post("/api/v1/auth/token", data={"username": user, "password": password})
            if login.status_code != 200:
                console.print(f"[red]login refused: {login.text}[/red]")
                raise typer.Exit(2)
            token = login.json()["access_token"]
        answer = client.post(f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    if answer.status_code != 200:
        detail = answer.json().get("detail") if answer.headers.get("content-type", "").startswith("application/json") else answer.text
        failures = detail.get("failures") if isinstance(detail, dict) else None
        for line in failures or [detail]:
            console.print(f"[red]refused[/red]: {line}")
        raise typer.Exit(1)
    for change in answer.json()["changes"]:
        console.print(f"{change['camera']} ({change['edge']}): {change['from_model']} -> {change['to_model']} "
                      f"({change['action']}; edge command {change['command_id']})")
    print(json.dumps(answer.json()), file=sys.stderr)


_CENTRAL = typer.Option(..., "--central", help="central's address, e.g. http://127.0.0.1:8080")
_TOKEN = typer.Option(None, "--token", help="an admin's bearer token (default: $SHARPEYES_TOKEN)")
_USER = typer.Option(None, "--user", help="log in as this admin (password: $SHARPEYES_PASSWORD, or asked)")
_CAMERA = typer.Option(None, "--camera", help="one camera")
_ZONE_KIND = typer.Option(None, "--zone-kind", help="every camera with a zone of this kind (fire_lane, indoor, occupancy)")


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="a model trained here"),
    camera: str = _CAMERA, zone_kind: str = _ZONE_KIND, central: str = _CENTRAL, token: str = _TOKEN,
    user: str = _USER, reason: str = typer.Option(None, "--reason"),
) -> None:
    """Put NAME on a camera (or on every camera with a zone of a kind) through central: central runs the
    gate against each camera's current model and pushes the edges' configuration when it passes."""
    _central_call(central, "/models/promote", {"model": name, "camera": camera, "zone_kind": zone_kind,
                                               "reason": reason}, token, user)


@app.command("rollback")
def rollback(camera: str = _CAMERA, zone_kind: str = _ZONE_KIND, central: str = _CENTRAL, token: str = _TOKEN,
             user: str = _USER, reason: str = typer.Option(None, "--reason")) -> None:
    """Give the camera(s) back the model they ran before their latest model change."""
    _central_call(central, "/models/rollback", {"camera": camera, "zone_kind": zone_kind, "reason": reason}, token, user)


@app.command("vet-checkpoint")
def vet_checkpoint(
    file: Path = typer.Argument(..., help="a PyTorch checkpoint (.pt) from outside, e.g. Ultralytics' yolov8n.pt"),
    copy: list[Path] = typer.Option(None, "--copy", help="the same file as found in another, unrelated place (x2 at least)"),
    against: str = typer.Option("yolov8n", "--against", help="the registered export it must agree with"),
) -> None:
    """Accept a checkpoint only if 3 unrelated copies have its bytes, its pickle names only torch /
    ultralytics / collections globals (read, never run), and, loaded, it gives the export's outputs on
    ../shared/media. Prints what to record under bases: in models/registry.yaml (models/checkpoint.py)."""
    from models.checkpoint import vet
    from models.torch_base import MAX_DEVIATION, deviation_from_onnx

    result = vet(file, copy or [])
    console.print(f"{file}: sha256 {result.sha256}; {len(result.copies)} other copies; {result.globals_seen} globals")
    if not result.accepted:
        for problem in result.problems:
            console.print(f"[red]refused[/red]: {problem}")
        raise typer.Exit(1)
    import torch

    model = torch.load(file, map_location="cpu", weights_only=False)["model"].float()  # vetted above
    deviation = deviation_from_onnx(model, resolve_model(against).path)
    if deviation > MAX_DEVIATION:
        console.print(f"[red]refused[/red]: its outputs differ from {against}'s by {deviation:.4g} (limit {MAX_DEVIATION})")
        raise typer.Exit(1)
    console.print(f"[green]accepted[/green]: outputs within {deviation:.4g} of {against} on ../shared/media. Record it:")
    console.print(f"  - name: {file.stem}\n    architecture: {file.stem}\n    checkpoint: {file.name}\n"
                  f"    checkpoint_sha256: {result.sha256}\n    verified: {1 + len(result.copies)} identical copies; "
                  f"pickle globals torch/ultralytics/collections only; outputs within {deviation:.4g} of {against}.onnx")


@app.command("quantize")
def quantize_model(
    source: str = typer.Argument(..., help="a registered YOLOv8 model (fp32): yolov8n, or one trained here"),
    name: str = typer.Option(..., "--name", help="the INT8 model's name (camera model:, --model flags, bench)"),
    calibration: list[Path] = typer.Option(None, "--calibration", help="pictures (a file or folder, a YOLO-layout "
                                           "dataset) or a clip (every 10th frame) to calibrate on; repeat for several "
                                           "(default: ../shared/datasets/ebike-elevator and ../shared/media/elevator_*.mp4)"),
    reduce_range: bool = typer.Option(False, "--reduce-range/--full-range",
                                      help="7-bit weights, against saturated u8 x s8 sums on AVX2 CPUs without VNNI "
                                      "(on yolov8n here: as fast, and less agreement with fp32)"),
    max_frames: int = typer.Option(200, "--max-frames", min=1, help="calibration frames at most (evenly thinned)"),
    as_json: bool = typer.Option(False, "--json", help="print the registered entry as JSON"),
) -> None:
    """Quantize SOURCE statically to INT8 (onnxruntime QDQ, calibrated on real letterboxed frames; the
    head's DFL/anchor tail stays float) and register it in the local store as NAME (models/quantize.py)."""
    import json

    from models.quantize import QuantizeError, QuantizeSettings, quantize

    say = (lambda line: print(line, file=sys.stderr)) if as_json else console.print  # noqa: E731
    settings = QuantizeSettings(source=source, name=name, calibration=tuple(calibration or ()),
                                reduce_range=reduce_range, max_frames=max_frames)
    try:
        entry = quantize(settings, progress=say)
    except (QuantizeError, ModelNotFound, ChecksumMismatch) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(entry.model_dump(mode="json")))
        return
    record = (entry.trained or {})["quantized"]
    table = Table("frames", f"{source} boxes (>= 0.35)", f"found by {name}", "share", f"{name} boxes", "matching",
                  title=f"{name}: {source}'s boxes found again (same label, IoU >= 0.5, fitted input)")
    for label, figures in record["agreement"].items():
        table.add_row(f"{label} ({figures['frames']})", str(figures["source_boxes"]), str(figures["found"]),
                      str(figures["recall_of_source"]), str(figures["quantized_boxes"]), str(figures["precision_vs_source"]))
    console.print(table)
    figures = (entry.trained or {}).get("figures")
    if figures:
        hazard = figures["held_out"]["hazards"][0]
        console.print(f"held-out part of {source}: e-bikes found {hazard['found']}/{hazard['labelled']}, "
                      f"vehicle agreement {figures['vehicle_agreement']}")


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
