"""Static INT8 quantization of a YOLOv8 export: `sharpeyes models quantize SOURCE --name NAME`.

onnxruntime's ``quantize_static`` in QDQ format, calibrated (MinMax) on real letterboxed frames:
unsigned 8-bit activations, signed 8-bit weights per output channel, full range by default. (onnxruntime
advises ``reduce_range``, 7-bit weights, on CPUs without VNNI, whose VPMADDUBSW sums u8 x s8 products
in 16 bits that can saturate; on yolov8n here it was as fast and agreed less with fp32: --reduce-range.)
The detection head's tail after its last convolutions (the DFL
softmax and convolution, the anchor arithmetic, the concatenations and the class sigmoid) stays
float: quantizing it costs accuracy for almost no time, and its anchor constants must stay the
float tables that ``models/reanchor.py`` rewrites, so that the quantized model is fitted to a
camera's frame shape (e.g. 480x640 for a portrait lift sub-stream) exactly like its source.

Measured on the 2-core AVX2 EPYC without VNNI (docs/models.md, "Static INT8"): about 1.5x less CPU
per inference at 480x640 than fp32; signed 8-bit activations (s8 x s8) were 1.5x slower than fp32 there.

The result is an ordinary model of the local store (``models/weights/store.yaml``, never in git),
usable as a camera's ``model:``. Its ``trained`` record says what it was quantized from and with
what; for a model trained here it keeps the source's split and settings and adds the quantized
model's own figures on the source's held-out part, so that the gate and ``models eval-seeds
--reuse`` treat it like a trained model.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.registry import (
    PROJECT_ROOT,
    ModelEntry,
    load_registry,
    register_in_store,
    resolve_class_file,
    resolve_model,
    save_trained_record,
    sha256_file,
    store_dir,
)

Progress = Callable[[str], None]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")
FRAME_STEP = 10  # every 10th frame of a calibration clip (2.5 per second at 25 fps)
MAX_FRAMES = 200
# The box and class branches of the YOLOv8 head (Ultralytics' Detect.cv2 / cv3): quantized. The rest
# of the head (DFL, anchors, concatenations, sigmoid) is left in float.
HEAD_BRANCHES = ("/cv2.", "/cv3.")
AGREEMENT_SCORE = 0.35  # the zones' default min_score
AGREEMENT_IOU = 0.5


class QuantizeError(ValueError):
    """The model cannot be quantized this way, or the calibration frames are missing."""


def default_calibration() -> list[Path]:
    """The shared e-bike set's pictures and the shared lift clips: what a lift camera sees."""
    shared = PROJECT_ROOT.parent / "shared"
    return [shared / "datasets" / "ebike-elevator", *sorted((shared / "media").glob("elevator_*.mp4"))]


@dataclass(frozen=True)
class QuantizeSettings:
    source: str
    name: str
    calibration: tuple[Path, ...] = ()  # empty: default_calibration()
    reduce_range: bool = False
    per_channel: bool = True
    max_frames: int = MAX_FRAMES


def _images_in(folder: Path) -> list[Path]:
    root = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _clip_frames(clip: Path, step: int) -> Iterator[np.ndarray]:
    import av

    with av.open(str(clip)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                yield frame.to_ndarray(format="bgr24")


def calibration_frames(sources: list[Path], max_frames: int = MAX_FRAMES) -> list[np.ndarray]:
    """BGR frames from pictures (a file, a folder, a YOLO-layout dataset) and clips (every 10th
    frame), evenly thinned to at most MAX_FRAMES."""
    import cv2

    frames: list[np.ndarray] = []
    for source in sources:
        if source.is_dir():
            pictures = _images_in(source)
            if not pictures:
                raise QuantizeError(f"{source}: no pictures ({', '.join(IMAGE_SUFFIXES)})")
            frames += [f for f in (cv2.imread(str(p)) for p in pictures) if f is not None]
        elif source.suffix.lower() in VIDEO_SUFFIXES and source.is_file():
            frames += list(_clip_frames(source, FRAME_STEP))
        elif source.suffix.lower() in IMAGE_SUFFIXES and source.is_file():
            picture = cv2.imread(str(source))
            if picture is None:
                raise QuantizeError(f"{source}: not a picture OpenCV reads")
            frames.append(picture)
        else:
            raise QuantizeError(f"{source}: not a folder of pictures, a picture or a clip ({', '.join(VIDEO_SUFFIXES)})")
    if not frames:
        raise QuantizeError(f"no calibration frames in {', '.join(map(str, sources))}")
    if len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).astype(int)]
    return frames


def head_tail_nodes(graph: Any) -> list[str]:
    """The YOLOv8 head's nodes after its last box and class convolutions (left in float)."""
    producer = next((n for n in graph.node if graph.output[0].name in n.output), None)
    if producer is None or "/" not in producer.name.strip("/"):
        raise QuantizeError("the output's node has no Ultralytics module name (/model.N/...): not a YOLOv8 export")
    prefix = producer.name.rsplit("/", 1)[0] + "/"
    tail = [n.name for n in graph.node if n.name.startswith(prefix) and not any(b in n.name for b in HEAD_BRANCHES)]
    if not any(n.op_type == "Softmax" for n in graph.node if n.name in tail):
        raise QuantizeError(f"no DFL softmax under {prefix}: not the YOLOv8 detection head this module knows")
    return tail


def agreement(source: Any, quantized: Any, frames: list[np.ndarray], width: int | None = None) -> dict[str, Any]:
    """Share of SOURCE's boxes (>= 0.35) that QUANTIZED finds with the same label at IoU >= 0.5, and
    the other way round, on FRAMES (at the detector's fitted input for each frame)."""
    from supervision import box_iou_batch

    counts = {"source_boxes": 0, "found": 0, "quantized_boxes": 0, "matched": 0}
    for frame in frames:
        a = [d for d in source.detect(frame, width) if d.score >= AGREEMENT_SCORE]
        b = [d for d in quantized.detect(frame, width) if d.score >= AGREEMENT_SCORE]
        counts["source_boxes"] += len(a)
        counts["quantized_boxes"] += len(b)
        if a and b:
            iou = box_iou_batch(np.array([d.box for d in a]), np.array([d.box for d in b]))
            same = np.array([[da.label == db.label for db in b] for da in a])
            hit = (iou >= AGREEMENT_IOU) & same
            counts["found"] += int(hit.any(axis=1).sum())
            counts["matched"] += int(hit.any(axis=0).sum())
    return {**counts, "frames": len(frames),
            "recall_of_source": round(counts["found"] / counts["source_boxes"], 3) if counts["source_boxes"] else 1.0,
            "precision_vs_source": round(counts["matched"] / counts["quantized_boxes"], 3) if counts["quantized_boxes"] else 1.0}


def _held_out_figures(name: str, record: dict[str, Any], progress: Progress) -> dict[str, Any] | None:
    """The quantized model's gate figures on its source's held-out part, if that part is still there."""
    from models.detector import load_detector
    from models.evaluation import LOW_SCORE
    from models.gate_figures import load_sets, manifest_hash, measure, street_frames

    roots = [Path(p) for p in (record["dataset"] if isinstance(record["dataset"], list) else [record["dataset"]])]
    try:
        dataset, _ = load_sets(roots)
    except Exception as exc:  # noqa: BLE001 - any reason the set cannot be read: no figures, said so
        progress(f"no held-out figures: the source's dataset {roots} cannot be read ({exc})")
        return None
    if manifest_hash(dataset) != record.get("dataset_manifest_sha256"):
        progress(f"no held-out figures: the source's dataset {roots} changed since it was trained")
        return None
    held = set(record["split"]["held_out"])
    indices = [i for i, item in enumerate(dataset.images) if item.path.name in held]
    reference = load_detector(record["base_figures"]["model"], score_threshold=LOW_SCORE, intra_op_threads=1)
    return measure(name, dataset, indices, float(record["settings"]["conf"]), street_frames(), reference)


def quantize(settings: QuantizeSettings, progress: Progress = print) -> ModelEntry:
    """Quantize SOURCE statically to INT8 and register it in the local store as NAME."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from models.detector import OnnxDetector, load_detector
    from models.evaluation import LOW_SCORE

    started = time.monotonic()
    if any(m.name == settings.name for m in load_registry().models):
        raise QuantizeError(f"a model named {settings.name!r} is registered already; choose another --name")
    resolved = resolve_model(settings.source)
    source = resolved.entry
    if source.decoder != "yolov8" or source.input_size[0] != source.input_size[1]:
        raise QuantizeError(f"{source.name}: only square YOLOv8 exports are quantized here (it is {source.decoder} "
                            f"{source.input_size[0]}x{source.input_size[1]})")
    if settings.source.endswith(".onnx"):
        raise QuantizeError("give a registered model's name, so that the result can name its source's sha256 and classes")
    if "ConvInteger" in {n.op_type for n in onnx.load(str(resolved.path)).graph.node}:
        raise QuantizeError(f"{source.name} is quantized already (ConvInteger); quantize its fp32 export")
    sources = list(settings.calibration) or default_calibration()
    frames = calibration_frames(sources, settings.max_frames)
    size = (int(source.input_size[0]), int(source.input_size[1]))
    progress(f"{source.name}: calibrating on {len(frames)} frames from {', '.join(str(s) for s in sources)}")

    # Calibrated on exactly what the detector feeds the source (models/detector.py).
    reference = OnnxDetector(source.name, score_threshold=LOW_SCORE, intra_op_threads=1)

    class Frames(CalibrationDataReader):
        def __init__(self, input_name: str) -> None:
            self._inputs = iter(frames)
            self._name = input_name

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._inputs, None)
            return None if frame is None else {self._name: reference.input_tensor(frame, size)[0]}

    out_dir = store_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{settings.name}.onnx"
    with tempfile.TemporaryDirectory(prefix="sharpeyes-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(resolved.path), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        excluded = head_tail_nodes(graph)
        partial = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(partial), Frames(graph.input[0].name), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded)
        partial.replace(target)
    quantized_with: dict[str, Any] = {
        "from": source.name, "from_sha256": source.sha256, "method": "onnxruntime quantize_static, QDQ, MinMax",
        "activations": "QUInt8", "weights": "QInt8" + (" per channel" if settings.per_channel else " per tensor"),
        "reduce_range": settings.reduce_range, "float_nodes": len(excluded),
        "calibration": {"sources": [str(s) for s in sources], "frames": len(frames)},
    }
    source_record = dict(source.trained or {})
    # A trained source's split and settings stay (eval-seeds, the gate); its own figures are not ours.
    record: dict[str, Any] = {k: v for k, v in source_record.items() if k not in ("figures", "total_seconds")}
    if "figures" in source_record:
        record["other_figures"] = {**source_record.get("other_figures", {}), source.name: source_record["figures"]}
    record["quantized"] = quantized_with
    _, classes_sha256 = resolve_class_file(source)
    entry = ModelEntry(name=settings.name, file=target.name, sha256=sha256_file(target), input_size=source.input_size,
                       decoder=source.decoder, color=source.color,
                       licence=f"{source.licence}; INT8 of {source.name} (sharpeyes models quantize)",
                       classes=source.classes, providers="cpu", trained=record)
    register_in_store(entry, classes_sha256)
    progress(f"registered {settings.name}: {target} (sha256 {entry.sha256[:12]}…, {target.stat().st_size / 1e6:.1f} MB)")

    # What it still sees: the source's boxes, each frame at the detector's fitted input.
    from models.gate_figures import street_frames

    int8 = load_detector(settings.name, score_threshold=LOW_SCORE, intra_op_threads=1)
    quantized_with["agreement"] = {"calibration_frames": agreement(reference, int8, frames),
                                   "street_clip": agreement(reference, int8, street_frames())}
    if "split" in record and "base_figures" in record:
        figures = _held_out_figures(settings.name, record, progress)
        if figures is not None:
            record["figures"] = figures
    quantized_with["seconds"] = round(time.monotonic() - started, 1)
    return save_trained_record(settings.name, record)
