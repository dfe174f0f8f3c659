"""What the edge is compared with, on the same model graph: the floor (bare keyframe decode plus
bare onnxruntime) and the peer (Ultralytics' streaming predictor), each in its own process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sharpeyes.bench.edge_bench.measure import measure, summarise
from sharpeyes.bench.edge_bench.options import BenchError, BenchOptions
from sharpeyes.bench.edge_bench.result import Contestant
from sharpeyes.bench.media import CameraProfile

if TYPE_CHECKING:
    from broker.zonekinds import ZoneKind


def same_model_as_edge(model: str, frame_w: int, frame_h: int, workdir: Path,
                       zone_kind: ZoneKind = "fire_lane", detect_width: int | None = None) -> tuple[Path, tuple[int, int]]:
    """The model file and input size the edge's detector uses for these cameras' frames.

    The edge fits an Ultralytics export to the frame's shape and to the zone kind's detect width
    (or the cameras' own ``detect_width``) in memory (models/reanchor.py); the floor and the peer get the same graph as a
    file, so all three do the same inference work.
    """
    from broker.zonekinds import ZONE_KINDS
    from models.detector import OnnxDetector
    from models.reanchor import reanchor_yolov8

    detector = OnnxDetector(model, intra_op_threads=1)
    size = detector.input_size_for(frame_w, frame_h, detect_width or ZONE_KINDS[zone_kind].sampling.detect_width)
    path, exported = published_model(model)
    if size == exported:
        return path, size
    fitted = workdir / f"{path.stem}_{size[0]}x{size[1]}.onnx"
    fitted.write_bytes(reanchor_yolov8(path, *size))
    return fitted, size


def published_model(model: str) -> tuple[Path, tuple[int, int]]:
    """The registered file and the input size it was exported with."""
    from models.registry import resolve_model

    resolved = resolve_model(model)
    return resolved.path, (int(resolved.entry.input_size[0]), int(resolved.entry.input_size[1]))


def measure_floor(opts: BenchOptions, urls: list[str], model_path: Path, workdir: Path,
                  progress: Callable[[str], None], server_pids: list[int] | None = None) -> Contestant:
    # Lift cameras are sampled at 2 fps, faster than their keyframes come: every frame is decoded.
    what = "every-frame decode of the sub-stream" if opts.lift else "keyframe decode"
    progress(f"floor: bare {what} + onnxruntime on {opts.cameras} cameras")
    floor, records, window = measure(
        "floor", "sharpeyes.bench.floor",
        [*_url_args(urls), "--fps", str(opts.fps), "--model", str(model_path), *(["--all-frames"] if opts.lift else [])],
        cameras=opts.cameras, opts=opts, workdir=workdir, server_pids=server_pids)
    return summarise(floor, records, window, opts.fps)


def measure_peer(opts: BenchOptions, urls: list[str], model_path: Path, input_size: tuple[int, int], workdir: Path,
                 progress: Callable[[str], None], server_pids: list[int] | None = None, name: str = "peer") -> Contestant:
    from sharpeyes.bench.peer import INSTALL_HINT, peer_available

    n = max(1, min(opts.peer_cameras, opts.cameras))
    if not peer_available():
        return Contestant(name=name, cameras=n, note=INSTALL_HINT)
    stride = max(1, round(CameraProfile(gop=opts.gop).fps / opts.fps))
    progress(f"{name}: Ultralytics predict(stream=True, vid_stride={stride}, imgsz={input_size[1]}x{input_size[0]}) "
             f"on {n} camera(s), {model_path.name}")
    try:
        peer, records, window = measure(
            name, "sharpeyes.bench.peer",
            [*_url_args(urls[:n]), "--vid-stride", str(stride), "--model", str(model_path),
             "--imgsz", f"{input_size[1]},{input_size[0]}"],
            cameras=n, opts=opts, workdir=workdir, server_pids=server_pids,
            # Over TCP as the edge reads; keep Ultralytics from checking for updates or writing settings.
            env={"OPENCV_FFMPEG_CAPTURE_OPTIONS": "rtsp_transport;tcp", "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False",
                 "YOLO_CONFIG_DIR": str(workdir / "ultralytics")},
        )
    except BenchError as exc:  # the peer is a comparison: its failure must not cost the edge's figures
        return Contestant(name=name, cameras=n, note=f"{name} failed: {exc}")
    summarise(peer, records, window, opts.fps)
    notes = [f"NMS: {records.get('nms')}"] if records.get("nms") else []
    if records.get("errors"):
        notes.append(f"errors: {records['errors']}")
    peer.note = "; ".join(notes) or None
    return peer



def _url_args(urls: list[str]) -> list[str]:
    return [arg for url in urls for arg in ("--url", url)]
