"""`sharpeyes bench ...`: performance benchmarks (not tests: they measure, they do not assert)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="benchmarks.", no_args_is_help=True)


@app.callback()
def bench() -> None:
    """Performance benchmarks on real parts (RTSP, Mosquitto, the model); they measure, never assert."""


@app.command("edge")
def edge(
    cameras: int = typer.Option(32, "--cameras", min=1, help="number of RTSP cameras on loopback"),
    seconds: float = typer.Option(60.0, "--seconds", min=5, help="measured window per contestant (after warm-up)"),
    fps: float = typer.Option(None, "--fps", min=0.05, max=25, help="detect cadence (default: 0.5 for fire lanes, 2 for lifts)"),
    gop: int = typer.Option(50, "--gop", min=1, help="camera keyframe interval in frames (25 fps stream)"),
    model: str = typer.Option("yolov8n", "--model", help="registered model for edge, floor and peer"),
    peer: bool = typer.Option(True, "--peer/--no-peer", help="also measure Ultralytics' streaming predictor"),
    peer_cameras: int = typer.Option(2, "--peer-cameras", min=1, help="cameras the peer runs (it cannot keep up with 32 on 2 cores)"),
    floor: bool = typer.Option(True, "--floor/--no-floor", help="also measure bare decode + bare onnxruntime"),
    dwell: float = typer.Option(None, "--dwell", min=1, help="zone dwell_s for the alert-latency figure (default: "
                                "10 for fire lanes, 2 for lifts)"),
    source: Path = typer.Option(None, "--source", help="footage to stream (default ../shared/media/street_parked_cars_720p.mp4)"),
    workdir: Path = typer.Option(None, "--workdir", help="keep logs and per-sample records here"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
    details: Path = typer.Option(None, "--details", help="also write every figure (all contestants) to this JSON file"),
    boost: bool = typer.Option(False, "--boost", help="run the bench's processes at top CPU priority (root; for shared machines)"),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="the edge runs with its scene-change gate"),
    ungated: bool = typer.Option(True, "--ungated/--no-ungated", help="also measure the edge without the gate"),
    changing: float = typer.Option(0.25, "--changing", min=0, max=1,
                                   help="share of cameras streaming a changing scene (cars driving through a lot)"),
    changing_source: Path = typer.Option(None, "--changing-source", help="that footage (default ../shared/media/parking_lot_traffic.mp4)"),
    substream: bool = typer.Option(True, "--substream/--no-substream",
                                   help="cameras also offer a 640x360 5 fps sub-stream; the edge detects on it"),
    hazard: str = typer.Option("fire_lane", "--hazard", help="fire_lane: street cameras at 0.5 fps; ebike: lift "
                               "cameras at 2 fps on footage spliced from the shared lift clips"),
    camera_server: str = typer.Option("gst", "--camera-server", help="gst: GStreamer's RTSP server (C; falls back "
                                      "to python, loudly, where it is missing); python: aio-rtsp-toolkit"),
    repeat: int = typer.Option(1, "--repeat", min=1, help="run N times; report min/median/max, targets on the worst run"),
    find_capacity: bool = typer.Option(False, "--find-capacity", help="search the largest camera count that keeps "
                                       "every camera >= 95 %% on time in every run (--repeat), then measure all at it"),
    capacity_start: int = typer.Option(4, "--capacity-start", min=1, help="first count the search tries (doubled)"),
    capacity_limit: int = typer.Option(128, "--capacity-limit", min=1, help="largest count the search tries"),
    capacity_step: int = typer.Option(1, "--capacity-step", min=1, help="stop the search when it is this narrow"),
    detect_width: int = typer.Option(None, "--detect-width", min=160, max=1280,
                                     help="the detector's input long side on every camera (default: the zone kind's, "
                                     "480 for fire lanes, 640 for lifts)"),
    phases: int = typer.Option(None, "--phases", min=1, max=64,
                               help="loop phases of the footage (gst): camera i starts the clip at (i mod N)/N of "
                               "it, so cameras are not all in step (1: each starts it as it connects; default: 6 "
                               "for lifts, whose rides are independent, 1 for fire lanes)"),
    blocked: float = typer.Option(1.0, "--blocked", min=0, max=1,
                                  help="share of the street cameras whose fire lane holds parked cars; the others "
                                  "watch the road's middle, where traffic passes and nothing stops (fire lanes)"),
    evidence_stream: str = typer.Option("auto", "--evidence-stream",
                                        help="the cameras' evidence_stream: auto (the main stream on demand) or "
                                        "always (open all the time), to measure what the main streams cost"),
) -> None:
    """N real RTSP cameras -> the edge (fire lanes) vs the floor and the peer, in one run.

    Each contestant runs in its own process; CPU and RSS come from /proc. Ratios are between
    figures of the same run. Takes about 3 x (warm-up + SECONDS).
    """
    import json
    import logging
    import sys

    from sharpeyes.bench.edge_bench.options import (
        CAMERA_SERVERS,
        DEFAULT_FPS,
        DEFAULT_PHASES,
        EVIDENCE_STREAMS,
        HAZARDS,
        BenchError,
        BenchOptions,
    )
    from sharpeyes.bench.edge_bench.series import repeated_summary, run_capacity, run_repeated
    from sharpeyes.bench.peer import INSTALL_HINT, peer_available
    from sharpeyes.bench.report import print_capacity, print_repeat_table, print_table

    if hazard not in HAZARDS or camera_server not in CAMERA_SERVERS or evidence_stream not in EVIDENCE_STREAMS:
        typer.echo(f"error: --hazard takes {' or '.join(HAZARDS)}; --camera-server {' or '.join(CAMERA_SERVERS)}; "
                   f"--evidence-stream {' or '.join(EVIDENCE_STREAMS)}", err=True)
        raise typer.Exit(2)

    if peer and not peer_available():
        typer.echo(f"error: {INSTALL_HINT}", err=True)
        raise typer.Exit(2)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    lift = hazard == "ebike"
    opts = BenchOptions(cameras=cameras, seconds=seconds, fps=fps or DEFAULT_FPS[hazard], gop=gop, model=model, peer=peer,
                        peer_cameras=peer_cameras, floor=floor, dwell_s=dwell or (2.0 if lift else 10.0), source=source,
                        workdir=workdir, boost=boost, gate=gate, ungated=ungated,
                        # The lift loop changes by itself (people, a scooter): no second scene.
                        changing=0.0 if lift else changing, changing_source=changing_source, substream=substream,
                        camera_server=camera_server, hazard=hazard, detect_width=detect_width,
                        phases=phases or DEFAULT_PHASES[hazard], blocked=blocked, evidence_stream=evidence_stream)
    progress = lambda text: typer.echo(text, err=True)  # noqa: E731
    try:
        if find_capacity:
            found = run_capacity(opts, repeat, capacity_start, capacity_limit, capacity_step, progress)
            if details is not None:
                details.write_text(json.dumps(found, indent=2, ensure_ascii=False))
            typer.echo(json.dumps(found, ensure_ascii=False)) if as_json else print_capacity(found)
            return
        results = run_repeated(opts, repeat, progress)
    except BenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if repeat > 1:
        summary = repeated_summary(results)
        if details is not None:
            details.write_text(json.dumps({"summary": summary, "runs": [r.details() for r in results]}, indent=2,
                                          ensure_ascii=False))
        typer.echo(json.dumps(summary, ensure_ascii=False)) if as_json else print_repeat_table(summary)
        return
    result = results[0]
    if details is not None:
        details.write_text(json.dumps(result.details(), indent=2, ensure_ascii=False))
    if as_json:
        typer.echo(result.to_json())
    else:
        print_table(result.summary())


@app.command("cameras")
def cameras_cost(
    cameras: int = typer.Option(4, "--cameras", min=1, max=64, help="cameras per server (a main and a sub-stream each)"),
    seconds: float = typer.Option(20.0, "--seconds", min=5, help="measured window per server"),
    servers: str = typer.Option("gst,python", "--servers", help="servers to measure, in this order"),
    readers: str = typer.Option("edge", "--readers",
                                help="how the readers open streams, each measured in turn: edge (the edge's opener) "
                                "and/or pyav-timeout (PyAV's timeout=, the baseline)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON list instead of the table"),
) -> None:
    """What the stand-in cameras cost (each RTSP server's CPU seconds per stream-second) and what
    reading them costs (the readers' CPU per packet), same run."""
    import json
    import tempfile

    from rich.console import Console
    from rich.table import Table

    from sharpeyes.bench.camera_cost import READER_STYLES, as_dicts, measure
    from sharpeyes.gst_rtsp_server import gst_unavailable

    kinds = tuple(k.strip() for k in servers.split(",") if k.strip())
    if not kinds or set(kinds) - {"gst", "python"}:
        typer.echo("--servers takes gst and/or python", err=True)
        raise typer.Exit(2)
    styles = tuple(k.strip() for k in readers.split(",") if k.strip())
    if not styles or set(styles) - set(READER_STYLES):
        typer.echo(f"--readers takes {' and/or '.join(READER_STYLES)}", err=True)
        raise typer.Exit(2)
    if "gst" in kinds and (why := gst_unavailable()):
        typer.echo(f"error: {why}", err=True)
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="sharpeyes-camera-cost-") as workdir:
        costs = measure(cameras, seconds, kinds, Path(workdir), styles)
    if as_json:
        typer.echo(json.dumps(as_dicts(costs)))
        return
    table = Table(title=f"sharpeyes bench cameras — {cameras} cameras (720p25 main + 360p5 sub-stream each), "
                        f"{seconds:.0f} s per server, readers demux only")
    for column in ("server", "streams", "CPU s", "CPU s per stream-second", "cores per 64 cameras", "frames delivered",
                   "reader", "reader cores", "reader µs per packet", "reader switches per packet"):
        table.add_column(column, justify="right")
    for c in costs:
        table.add_row(c.server, str(c.streams), f"{c.cpu_s:.2f}", f"{c.cpu_per_stream_s:.5f}",
                      f"{c.cpu_per_stream_s * 128:.2f}", f"{c.delivered_share:.0%}", c.reader,
                      f"{c.reader_cpu_s / c.seconds:.2f}", f"{c.reader_us_per_packet:.0f}", f"{c.reader_switches_per_packet:.1f}")
    Console(width=160).print(table)


@app.command("central")
def central(
    events: int = typer.Option(20000, "--events", min=10, help="hazard events to publish (blobs come on top)"),
    rate: float = typer.Option(0.0, "--rate", min=0, help="events/s the publisher paces to; 0: as fast as it can"),
    evidence_every: int = typer.Option(5, "--evidence-every", min=0, help="one event in N carries a 60 KB JPEG; 0: none"),
    only: str = typer.Option(None, "--only",
                             help="contestants to run, comma-separated (default floor,naive,naive_wal,central; "
                             "naive: sqlite3 defaults; naive_wal: with WAL); not with --workers"),
    mode: str = typer.Option("", "--mode", help="backlog: drain a broker-held backlog (default at full speed); "
                             "live: consume while publishing (default with --rate)"),
    broker_data: str = typer.Option("memory", "--broker-data", help="where the bench broker keeps its persistence: "
                                    "memory (/dev/shm, as if on its own host) or disk (beside central's files)"),
    batch_window_ms: float = typer.Option(None, "--batch-window-ms", min=0,
                                          help="central's group-commit window (default: central's, 10 ms)"),
    workers: str = typer.Option("", "--workers", help="worker counts, e.g. 1,2,3: central as that many `central "
                                "ingest` processes on one shared subscription, beside the floor (default: the "
                                "contestants, central in the bench's process)"),
    database: str = typer.Option("sqlite", "--database", help="central's database: sqlite or postgresql (a fresh "
                                 "database per measurement, dropped after)"),
    database_url: str = typer.Option(None, "--database-url", help="the PostgreSQL server to create those databases "
                                     "on (implies --database postgresql; default $SHARPEYES_BENCH_PG_URL, "
                                     "$SHARPEYES_TEST_PG_URL or postgresql://postgres@127.0.0.1:5432/postgres)"),
    repeat: int = typer.Option(1, "--repeat", min=1, help="with --workers: rounds of (floor, each count); the "
                               "table gives min/median/max and judges the worst run"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
) -> None:
    """Events through a private Mosquitto into central's ingest, vs the floor and a naive subscriber;
    with --workers, events/s by the number of `central ingest` workers, beside the floor."""
    import logging
    import sys

    from sharpeyes.bench.central_bench.options import BenchError, BenchOptions
    from sharpeyes.bench.central_bench.result import markdown, markdown_scaling
    from sharpeyes.bench.central_bench.run import run_bench, run_scaling

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    names = tuple(n.strip() for n in (only or "floor,naive,naive_wal,central").split(",") if n.strip())
    if not names or set(names) - {"floor", "naive", "naive_wal", "central"}:
        typer.echo("--only takes floor, naive, naive_wal and/or central", err=True)
        raise typer.Exit(2)
    try:
        counts = tuple(int(w) for w in workers.split(",") if w.strip())
    except ValueError:
        typer.echo("--workers takes worker counts, comma-separated (1,2,3)", err=True)
        raise typer.Exit(2) from None
    if counts and only is not None:
        typer.echo("--workers measures the floor and central's workers; --only does not go with it", err=True)
        raise typer.Exit(2)
    try:
        opts = BenchOptions(events=events, rate=rate, evidence_every=evidence_every, contestants=names, mode=mode,
                            broker_data=broker_data, batch_window_ms=batch_window_ms, workers=counts,
                            database=database, database_url=database_url, repeat=repeat)
        progress = lambda text: typer.echo(text, err=True)  # noqa: E731
        if counts:
            scaling = run_scaling(opts, progress=progress)
            typer.echo(scaling.to_json() if as_json else markdown_scaling(scaling.summary()))
            if failures := scaling.failures():
                typer.echo("error: not every event stored exactly once:\n" + "\n".join(failures), err=True)
                raise typer.Exit(1)
            return
        result = run_bench(opts, progress=progress)
    except BenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(result.to_json())
    else:
        typer.echo(markdown(result.summary()))


@app.command("detector")
def detector(
    model: str = typer.Option("yolov8n", "--model", help="registered Ultralytics model"),
    widths: str = typer.Option("640,512,480,416", "--widths", help="detect_width values to compare, comma-separated"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="interleaved rounds (the median round counts)"),
    source: Path = typer.Option(None, "--source", help="footage whose first frame is used (default: the street clip)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON list instead of the table"),
) -> None:
    """CPU per detection for each detector input size vs the square export, on one camera frame."""
    import json

    from rich.console import Console
    from rich.table import Table

    from sharpeyes.bench.detector_bench import as_dicts, run_detector_bench
    from sharpeyes.bench.edge_bench.options import default_source

    sizes = tuple(int(w) for w in widths.split(",") if w.strip())
    figures = run_detector_bench(source or default_source(), model, sizes, rounds)
    if as_json:
        typer.echo(json.dumps(as_dicts(figures)))
        return
    table = Table(title=f"sharpeyes bench detector — {model}, one intra-op thread, CPU per detect()")
    for column in ("input", "CPU ms", "÷ square", "vehicles in the kerb lane"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(f.input, f"{f.cpu_ms:.1f}", f"{f.vs_square:.2f}", str(f.kerb_vehicles))
    Console().print(table)


@app.command("int8")
def int8(
    model: str = typer.Option(..., "--model", help="an INT8 model (sharpeyes models quantize)"),
    against: str = typer.Option(None, "--against", help="the fp32 model (default: the one MODEL was quantized from)"),
    stream: str = typer.Option("408x576", "--stream", help="the camera stream's WIDTHxHEIGHT (a lift's portrait sub-stream)"),
    detect_width: int = typer.Option(640, "--detect-width", min=160, max=1280, help="the zone's detect_width"),
    calls: int = typer.Option(35, "--calls", min=5, help="timed calls per model per repeat, after 5 warm-up calls"),
    repeat: int = typer.Option(3, "--repeat", min=1, help="repeats; the worst ratio counts"),
    source: Path = typer.Option(None, "--source", help="a clip or picture whose first frame is used (default: "
                                "../shared/media/elevator_escooter_20s.mp4)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON list instead of the table"),
) -> None:
    """CPU per detect() of an INT8 model vs its fp32 source, interleaved in one run, one intra-op thread."""
    import json

    from rich.console import Console
    from rich.table import Table

    from models.registry import PROJECT_ROOT, load_registry
    from sharpeyes.bench.int8_bench import as_dicts, run_int8_bench, stream_frame, worst

    if against is None:
        entry = next((m for m in load_registry().models if m.name == model), None)
        against = ((entry.trained or {}).get("quantized") or {}).get("from") if entry else None
        if against is None:
            typer.echo(f"error: {model} names no source model; give --against", err=True)
            raise typer.Exit(2)
    width, height = (int(v) for v in stream.lower().split("x"))
    frame = stream_frame(source or PROJECT_ROOT.parent / "shared" / "media" / "elevator_escooter_20s.mp4", width, height)
    figures = run_int8_bench(model, against, frame, detect_width, calls, repeats=repeat)
    if as_json:
        typer.echo(json.dumps(as_dicts(figures)))
        return
    table = Table(title=f"sharpeyes bench int8 — {model} vs {against}, {stream} stream at detect_width {detect_width}, "
                        f"one intra-op thread, median thread CPU per detect() of {calls} interleaved calls")
    for column in ("repeat", "input", f"{against} ms", f"{model} ms", "int8 / fp32", "speed-up"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(str(f.repeat), f.input, f"{f.fp32_ms:.1f}", f"{f.int8_ms:.1f}", f"{f.ratio:.3f}", f"{f.speedup:.2f}x")
    w = worst(figures)
    table.add_row("worst", w.input, f"{w.fp32_ms:.1f}", f"{w.int8_ms:.1f}", f"{w.ratio:.3f}", f"{w.speedup:.2f}x")
    Console().print(table)


# Hand-counted people with a visible face in the shared photos (for the redaction recall).
SHARED_PHOTO_FACES = {"zidane.jpg": 2, "bus.jpg": 4}


@app.command("redaction")
def redaction(
    data: Path = typer.Option(None, "--data", help="a YOLO-layout set with person labels (class 1); default: "
                              "../shared/datasets/ebike-elevator"),
    media: Path = typer.Option(None, "--media", help="folder of the shared photos (default: ../shared/media)"),
) -> None:
    """Face redaction on real pictures: people whose head came out blurred, and CPU per image
    against a decode + re-encode baseline of the same run."""
    from rich.console import Console
    from rich.table import Table

    from central.evidence.redaction import FaceDetector
    from models.registry import PROJECT_ROOT, resolve_weight
    from sharpeyes.bench.redaction_bench import dataset_items, measure

    shared = PROJECT_ROOT.parent / "shared"
    data = data or shared / "datasets" / "ebike-elevator"
    media = media or shared / "media"
    detector = FaceDetector(resolve_weight("centerface"))
    rows = [measure("ebike-elevator (person labels)", dataset_items(data), detector)]
    photos = [media / name for name in SHARED_PHOTO_FACES if (media / name).exists()]
    photo_figures = measure("shared photos (faces counted by hand)", [(p, None) for p in photos], detector)
    table = Table(title="sharpeyes bench redaction — CenterFace on onnxruntime, one thread, CPU per image")
    for column in ("set", "images", "people", "heads blurred", "recall", "faces found", "ms/image", "÷ re-encode"):
        table.add_column(column, justify="right")
    for f in rows:
        table.add_row(f.name, str(f.images), str(f.persons), str(f.covered), f"{f.recall:.0%}", str(f.faces),
                      f"{f.ms_per_image:.0f}", f"{f.ms_per_image / f.baseline_ms:.1f}x")
    visible = sum(SHARED_PHOTO_FACES[p.name] for p in photos)
    table.add_row(photo_figures.name, str(photo_figures.images), str(visible), "—", "—", str(photo_figures.faces),
                  f"{photo_figures.ms_per_image:.0f}", f"{photo_figures.ms_per_image / photo_figures.baseline_ms:.1f}x")
    Console(width=160).print(table)


@app.command("actuation")
def actuation(
    cameras: int = typer.Option(8, "--cameras", min=1, max=64, help="lift cameras, a relay coil each"),
    seconds: float = typer.Option(90.0, "--seconds", min=20, help="how long the edge runs (an arrival per camera every 40 s)"),
    media: Path = typer.Option(None, "--media", help="folder of the shared clips (default: ../shared/media)"),
    workdir: Path = typer.Option(None, "--workdir", help="keep the edge's log and the site file here"),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="the scene gate on the lift cameras (the default, as deployed)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
) -> None:
    """Door hold latency: frame arrival to the relay module's acknowledgement, on the real edge
    against pymodbus's server, beside one detection and one bare Modbus write of the same run."""
    from rich.console import Console
    from rich.table import Table

    from models.registry import PROJECT_ROOT
    from sharpeyes.bench.actuation_bench import TARGET_P95_MS, measure
    from sharpeyes.bench.actuation_bench import as_json as figures_json

    media = media or PROJECT_ROOT.parent / "shared" / "media"
    console = Console(width=160, stderr=True)
    f = measure(media, cameras, seconds, workdir, gate, progress=lambda text: console.print(f"[dim]{text}[/dim]"))
    if as_json:
        print(figures_json(f))
    else:
        table = Table(title=f"sharpeyes bench actuation — frame arrival to coil acknowledged, {f.cameras} cameras, "
                            f"{f.seconds:.0f} s, scene gate {'on' if f.scene_gate else 'off'} (target p95 ≤ {TARGET_P95_MS:.0f} ms)")
        for column in ("holds", "failed", "p50 ms", "p95 ms", "max ms", "one detection ms", "Modbus write ms",
                       "p95 ÷ detection", "target"):
            table.add_column(column, justify="right")
        fmt = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        table.add_row(str(f.holds), str(f.failed), fmt(f.latency_p50_ms), fmt(f.latency_p95_ms), fmt(f.latency_max_ms),
                      f"{f.detection_ms:.0f}", f"{f.modbus_write_ms:.2f}",
                      "—" if f.p95_over_detection is None else f"{f.p95_over_detection:.1f}",
                      "met" if f.target_met else "MISSED")
        Console(width=160).print(table)
    if not f.holds:
        raise typer.Exit(1)


@app.command("gate")
def gate(
    media: Path = typer.Option(None, "--media", help="folder of the shared clips (default: ../shared/media)"),
) -> None:
    """The scene-change gate on the shared clips: replayed with the gate off and on in one run,
    CPU and detector runs side by side, and whether the events came out the same."""
    from rich.console import Console
    from rich.table import Table

    from models.detector import load_detector
    from models.registry import PROJECT_ROOT
    from sharpeyes.bench.gate_bench import measure

    media = media or PROJECT_ROOT.parent / "shared" / "media"
    figures = measure(media, PROJECT_ROOT / "configs" / "cameras", load_detector("yolov8n", intra_op_threads=1))
    table = Table(title="sharpeyes bench gate — edge replay, CPU s of the whole replay, gate off vs on (same run)")
    for column in ("clip", "events", "same events", "detections off", "detections on", "CPU off s", "CPU on s", "on ÷ off"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(f.clip, str(f.events), "yes" if f.same_events else "NO", str(f.samples), str(f.detections_on),
                      f"{f.cpu_off_s:.1f}", f"{f.cpu_on_s:.1f}", f"{f.ratio:.2f}")
    Console(width=160).print(table)


@app.command("inventory")
def inventory(
    cameras: int = typer.Option(30_000, "--cameras", min=10, help="cameras in the generated catalogue"),
    edges: int = typer.Option(1_000, "--edges", min=1, help="edges they are spread over"),
    queries: int = typer.Option(200, "--queries", min=1, help="searches of the camera list to time"),
    database_url: str = typer.Option(None, "--database-url", help="an EMPTY database (default: a new SQLite file)"),
    mqtt: bool = typer.Option(True, "--mqtt/--no-mqtt", help="publish the pushed commands to a real Mosquitto"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of the table"),
) -> None:
    """The inventory at city scale: import a generated catalogue CSV, search the camera list through
    the API, push a change to every edge; each beside a baseline measured in the same run."""
    from rich.console import Console
    from rich.table import Table

    from sharpeyes.bench.inventory_bench import IMPORT_TARGET_S, SEARCH_TARGET_MS, measure
    from sharpeyes.bench.inventory_bench import as_json as figures_json

    console = Console(width=160, stderr=True)
    f = measure(cameras, edges, queries, database_url, mqtt, progress=lambda text: console.print(f"[dim]{text}[/dim]"))
    if as_json:
        print(figures_json(f))
        return
    table = Table(title=f"sharpeyes bench inventory — {f.cameras} cameras over {f.edges} edges, {f.database}")
    for column in ("figure", "measured", "baseline (same run)", "ratio", "target"):
        table.add_column(column, justify="right")
    ratio = lambda a, b: "—" if not a or not b else f"{a / b:.1f}×"  # noqa: E731
    table.add_row("import of the catalogue CSV (s)", f"{f.import_s:.1f}", f"{f.plain_insert_s:.2f} plain INSERT",
                  ratio(f.import_s, f.plain_insert_s),
                  f"< {IMPORT_TARGET_S:.0f} s: " + ("met" if f.import_s < IMPORT_TARGET_S else "MISSED"))
    table.add_row("central start on that inventory (s)", f"{f.startup_s:.1f}", "—", "—", "—")
    table.add_row(f"camera list search p50 / p95 (ms, {f.queries} queries)", f"{f.search_p50_ms:.1f} / {f.search_p95_ms:.1f}",
                  f"{f.bare_sql_p50_ms:.1f} bare SQL p50", ratio(f.search_p50_ms, f.bare_sql_p50_ms),
                  f"< {SEARCH_TARGET_MS:.0f} ms: " + ("met" if f.search_p95_ms < SEARCH_TARGET_MS else "MISSED"))
    table.add_row(f"push to {f.push_edges} edges: versions + commands stored (s)", f"{f.push_store_s:.1f}", "—", "—", "measured")
    table.add_row(f"publish those {f.push_edges} config commands to Mosquitto (s)",
                  "—" if f.publish_s is None else f"{f.publish_s:.1f}",
                  "—" if f.plain_publish_s is None else f"{f.plain_publish_s:.2f} bare paho",
                  ratio(f.publish_s, f.plain_publish_s), "measured")
    Console(width=160).print(table)


@app.command("worker-death")
def worker_death(
    events: int = typer.Option(2000, "--events", min=100, help="start events streamed through an edge's outbox"),
    workers: int = typer.Option(3, "--workers", min=2, help="`central ingest` workers; one is killed (-9) for good"),
    rate: float = typer.Option(200.0, "--rate", min=10, help="events/s into the outbox"),
    ways: str = typer.Option("slots,short", "--ways", help="slots: --slots N (leases); short: --session-expiry 0 "
                             "(the edge's receipts recover); fixed: a fixed client id each, 7-day sessions (before)"),
    receipt_timeout: float = typer.Option(None, "--receipt-timeout", min=1, help="the edge's (default: its own, 30 s)"),
    database_url: str = typer.Option(None, "--database-url", help="a PostgreSQL server where databases may be "
                                     "created (default: $SHARPEYES_TEST_PG_URL or postgres@127.0.0.1:5432)"),
    workdir: Path = typer.Option(None, "--workdir", help="keep the logs here"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of the table"),
) -> None:
    """An ingest worker killed for good mid-stream (issue 27): what each way of naming the workers'
    MQTT sessions loses at the broker, stores in the end, delivers twice and how late."""
    from sharpeyes.bench.central_bench.options import BenchError
    from sharpeyes.bench.worker_death import Options, WorkerDeathError, markdown, run, to_json
    from sharpeyes.chaos.parts import ChaosError

    opts = Options(events=events, workers=workers, rate=rate, ways=tuple(w.strip() for w in ways.split(",") if w.strip()),
                   database_url=database_url, workdir=workdir)
    if receipt_timeout is not None:
        opts.receipt_timeout_s = receipt_timeout
    try:
        results = run(opts, progress=lambda text: typer.echo(text, err=True))
    except (WorkerDeathError, BenchError, ChaosError) as exc:  # a part that did not start, or timed out
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(to_json(results) if as_json else markdown(results, opts))
