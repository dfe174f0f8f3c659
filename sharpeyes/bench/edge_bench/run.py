"""A whole edge benchmark run: stand-in cameras and a broker up, then each contestant in turn."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import yaml

from sharpeyes.bench.edge_bench.baselines import measure_floor, measure_peer, published_model, same_model_as_edge
from sharpeyes.bench.edge_bench.cameras import (
    EDGE,
    HAZARD_EVENT,
    AlertClock,
    StandInCameras,
    encode_footage,
    resolve_camera_server,
    site_config,
    spread,
)
from sharpeyes.bench.edge_bench.measure import measure, summarise
from sharpeyes.bench.edge_bench.options import BenchError, BenchOptions, default_changing_source, default_source
from sharpeyes.bench.edge_bench.reference import reference_inference_ms
from sharpeyes.bench.edge_bench.result import BenchResult, machine_info
from sharpeyes.bench.procstat import boost


def lift_footage(progress: Callable[[str], None]) -> Path:
    """The lift loop spliced from the shared clips, cached under the project's var/ (built once)."""
    from models.registry import PROJECT_ROOT
    from sharpeyes.bench.lift_footage import lift_source

    media = default_source().parent
    progress(f"lift footage: a mostly empty lift with people and an e-scooter now and then, from {media}")
    try:
        return lift_source(media, PROJECT_ROOT / "var" / "bench")
    except FileNotFoundError as exc:
        raise BenchError(str(exc)) from None


def run_bench(opts: BenchOptions, progress: Callable[[str], None] = lambda text: None) -> BenchResult:
    from broker.mosquitto import MosquittoProcess

    if opts.cameras < 1:
        raise BenchError("--cameras must be at least 1")
    source = opts.source or (lift_footage(progress) if opts.lift else default_source())
    if not source.is_file():
        raise BenchError(f"camera footage not found: {source} (the clip lives in ../shared/media; pass --source)")
    camera_server, fallback = resolve_camera_server(opts.camera_server, progress)
    footage = encode_footage(opts, source, progress)
    n_changing = footage.changing_cameras
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="sharpeyes-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model_path, input_size = same_model_as_edge(opts.model, footage.profile.width, footage.profile.height, workdir,
                                                zone_kind="indoor" if opts.lift else "fire_lane", detect_width=opts.detect_width)
    names = [f"cam-{i + 1:03d}" for i in range(opts.cameras)]
    if opts.substream:
        footage.add_substreams(opts, progress)
    stand_ins = StandInCameras(names, footage, workdir, opts.substream, server=camera_server,
                               session_s=max(300.0, 2 * (opts.warmup_timeout_s + opts.settle_s + opts.seconds)),
                               phases=opts.phases)
    broker = MosquittoProcess(data_dir=workdir / "mosquitto")
    # Before the stand-ins start: the machine's own speed, with nothing of this run on it yet.
    reference_ms = reference_inference_ms()
    progress(f"machine reference: one yolov8n 640x640 inference on one thread, {reference_ms:.0f} ms CPU")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        stand_ins.start()
        broker.start()
        urls = stand_ins.urls()
        server_pids = stand_ins.pids()
        if opts.boost:
            granted = all([boost(pid) for pid in [os.getpid(), *server_pids, *([broker.pid] if broker.pid else [])]])
            progress("priority: the bench's processes run first" if granted else
                     "priority: --boost needs root or CAP_SYS_NICE; measuring at normal priority")
        cameras = list(zip(names, urls, stand_ins.detect_urls(), strict=True))
        street = [n for n in names if n not in stand_ins.changing_names]
        blocked = set(street) if opts.lift else set(spread(street, round(opts.blocked * len(street))))
        unblocked = frozenset(street) - blocked
        config_path = workdir / "site.yaml"
        config_path.write_text(yaml.safe_dump(site_config(cameras, broker.port, opts.fps, opts.dwell_s, opts.model,
                                                          gate=opts.gate, lift=opts.lift, detect_width=opts.detect_width,
                                                          unblocked=unblocked, evidence_stream=opts.evidence_stream),
                                                sort_keys=False))
        clock = AlertClock(broker.port, opts.dwell_s, HAZARD_EVENT[opts.hazard])
        try:
            what = "lift cameras, e-bike zones" if opts.lift else "fire lanes"
            progress(f"edge: {opts.cameras} cameras ({camera_server} RTSP server), {what} at {opts.fps} fps, "
                     f"{opts.seconds:.0f} s measured")
            edge, records, window = measure(
                "edge", "sharpeyes.bench.edge_runner",
                ["--config", str(config_path), "--edge", EDGE, "--outbox", str(workdir / "edge" / "outbox.db")],
                cameras=opts.cameras, opts=opts, workdir=workdir, server_pids=server_pids)
            summarise(edge, records, window, opts.fps)
            # Give the last events a moment to arrive before the subscriber closes.
            time.sleep(1.0)
        finally:
            clock.close()
        result = BenchResult(
            options={**asdict(opts), "source": str(source), "workdir": str(workdir), "changing_cameras": n_changing,
                     "blocked_cameras": len(blocked), "machine_reference_ms": round(reference_ms, 1),
                     "camera_server": camera_server, "camera_server_fallback": fallback,
                     "changing_source": str(opts.changing_source or default_changing_source()) if n_changing else None},
            started_at=started_at,
            machine=machine_info(),
            stream=footage.describe(input_size, opts.substream),
            edge=edge,
            alert_latency_ms=sorted(clock.alert_ms),
            processing_latency_ms=sorted(clock.processing_ms),
            # The changing cameras (cars driving through a lot) have no parked car in their kerb
            # lane, and the unblocked ones watch the road's middle, where nothing stops.
            alerts_expected=len(blocked),
        )
        if opts.ungated and opts.gate:
            progress(f"edge without the scene gate: {opts.cameras} cameras")
            ungated_path = workdir / "site-ungated.yaml"
            ungated_site = site_config(cameras, broker.port, opts.fps, opts.dwell_s, opts.model, gate=False,
                                       lift=opts.lift, detect_width=opts.detect_width, unblocked=unblocked,
                                       evidence_stream=opts.evidence_stream)
            ungated_path.write_text(yaml.safe_dump(ungated_site, sort_keys=False))
            ungated, records, window = measure(
                "edge_ungated", "sharpeyes.bench.edge_runner",
                ["--config", str(ungated_path), "--edge", EDGE, "--outbox", str(workdir / "edge-ungated" / "outbox.db")],
                cameras=opts.cameras, opts=opts, workdir=workdir, server_pids=server_pids)
            result.edge_ungated = summarise(ungated, records, window, opts.fps)
        else:
            result.skipped["ungated"] = "the edge without its gate not measured: " + (
                "--no-gate (the edge itself ran without it)" if not opts.gate else "--no-ungated")
        if not opts.floor:
            result.skipped["floor"] = "floor not measured: --no-floor"
        if not opts.peer:
            result.skipped["peer"] = result.skipped["peer_fitted"] = "peer not measured: --no-peer"
        if opts.floor:
            # Lift cameras: the floor samples the sub-stream too; decoding every frame of 25 fps
            # portrait main streams would make it the slowest contestant, not the least work.
            floor_urls = [u or m for u, m in zip(stand_ins.detect_urls(), urls, strict=True)] if opts.lift else urls
            result.floor = measure_floor(opts, floor_urls, model_path, workdir, progress, server_pids)
        if opts.peer:
            # The peer a user reaches for loads the published file, square input and all (the
            # issue's "YOLO(<the same onnx>)"); the edge fits that file to its cameras in memory.
            # Measured a second time on the edge's fitted graph, so both comparisons are on record.
            stock = published_model(opts.model)
            result.peer = measure_peer(opts, urls, stock[0], stock[1], workdir, progress, server_pids)
            if (model_path, input_size) != stock:
                result.peer_fitted = measure_peer(opts, urls, model_path, input_size, workdir, progress, server_pids,
                                                  name="peer_fitted")
            else:
                result.skipped["peer_fitted"] = "the edge runs the published graph unchanged: peer_fitted is the peer"
        return result
    finally:
        stand_ins.stop()
        broker.stop()
        if not opts.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
