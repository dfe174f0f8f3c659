"""Object detection with ONNX Runtime: letterbox, inference, decode, class-aware NMS.

The detector is the only part of the edge that touches model weights; it lives in ``models/`` so
that the model tools (evaluation, training, the promotion gate) measure the very code the edge runs
without importing the edge. Models come from the registry (``models/registry.yaml``), which names
the decoder, input size and colour order.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.decoders import DECODERS
from models.letterbox import Letterbox, letterbox

log = logging.getLogger(__name__)

NMS_IOU = 0.45
CPU = "CPUExecutionProvider"


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original pixels
    track_id: int | None = None  # set by edge.tracking; the detector itself never knows


class Detector(Protocol):
    model_name: str
    model_sha256: str
    class_names: tuple[str, ...]

    def detect(self, frame_bgr: np.ndarray, input_width: int | None = None) -> list[Detection]: ...


class TimedDetector:
    """A detector that counts its calls and the seconds spent in them. The edge wraps the shared
    model once per camera, so that /metrics tells which camera's detections cost the time."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self.model_name = detector.model_name
        self.model_sha256 = detector.model_sha256
        self.class_names = tuple(getattr(detector, "class_names", ()))
        self.calls = 0
        self.seconds = 0.0

    def detect(self, frame_bgr: np.ndarray, input_width: int | None = None) -> list[Detection]:
        started = time.perf_counter()
        try:
            return self._detector.detect(frame_bgr, input_width)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def choose_providers(requested: list[str] | None, available: list[str], *, cpu_only: bool = False) -> list[str]:
    """The execution providers to use: the requested ones that exist, else CPU, warning once."""
    if not requested:
        return [CPU]
    usable = [p for p in requested if p in available and (p == CPU or not cpu_only)]
    missing = [p for p in requested if p not in usable]
    if missing:
        why = "the model runs on CPU only" if cpu_only else f"available: {', '.join(available)}"
        log.warning("execution provider(s) %s not usable (%s); falling back to %s", ", ".join(missing), why, CPU)
    if CPU not in usable:
        usable.append(CPU)
    return usable


class OnnxDetector:
    """A YOLO-family detector on ONNX Runtime. ``detect`` may be called from several threads
    (onnxruntime sessions are thread-safe); the edge node bounds how many run at once."""

    def __init__(
        self,
        model: str = "yolov8n",
        *,
        score_threshold: float = 0.25,
        providers: list[str] | None = None,
        intra_op_threads: int | None = None,
        fit_input: bool = True,
    ) -> None:
        import onnxruntime as ort

        from models.registry import resolve_model

        resolved = resolve_model(model)
        entry = resolved.entry
        self.model_name = entry.name
        self.model_sha256 = entry.sha256
        self.class_names = resolved.class_names
        self.score_threshold = score_threshold
        self._square = (int(entry.input_size[0]), int(entry.input_size[1]))
        self._path = resolved.path
        # Ultralytics exports can be re-anchored to the frame's shape (models/reanchor.py): a 16:9
        # camera then costs 60 % of a square inference for the same boxes.
        self._fit = fit_input and entry.decoder == "yolov8" and self._square[0] == self._square[1]
        self._decode = DECODERS[entry.decoder]
        # Ultralytics exports expect RGB scaled to 0..1 and a centred letterbox; YOLOX expects the
        # raw BGR 0..255 image at the top-left corner. Mixing these up still "works" but shifts
        # boxes and loses recall, so the registry's decoder decides all three.
        self._rgb = entry.color == "rgb"
        self._normalise = entry.decoder == "yolov8"
        self._centred = entry.decoder == "yolov8"

        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
            options.inter_op_num_threads = 1
            # An idle spinning thread pool burns CPU that a two-core box does not have.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._options = options
        self._providers = choose_providers(providers, ort.get_available_providers(), cpu_only=entry.providers == "cpu")
        self._sessions: dict[tuple[int, int], ort.InferenceSession] = {
            self._square: ort.InferenceSession(str(resolved.path), sess_options=options, providers=self._providers)
        }
        self._sessions_lock = threading.Lock()
        self._input_name = self._sessions[self._square].get_inputs()[0].name
        log.info("detector %s loaded from %s on %s", self.model_name, resolved.path,
                 self._sessions[self._square].get_providers())

    def input_size_for(self, frame_w: int, frame_h: int, input_width: int | None = None) -> tuple[int, int]:
        """The model input (width, height) a frame of this size is letterboxed into: the frame
        scaled so that its long side is ``input_width`` (default: the export's own size)."""
        if not self._fit:
            return self._square
        from models.reanchor import fitted_size

        return fitted_size(frame_w, frame_h, input_width or self._square[0])

    def session_for(self, input_size: tuple[int, int]) -> Any:  # an onnxruntime.InferenceSession (no type hints)
        """The onnxruntime session for one input size, built on first use (cameras share them)."""
        session = self._sessions.get(input_size)
        if session is not None:
            return session
        import onnxruntime as ort

        from models.reanchor import reanchor_yolov8

        with self._sessions_lock:
            if input_size not in self._sessions:
                graph = reanchor_yolov8(self._path, *input_size)
                self._sessions[input_size] = ort.InferenceSession(graph, sess_options=self._options,
                                                                  providers=self._providers)
                log.info("detector %s fitted to %dx%d input", self.model_name, *input_size)
            return self._sessions[input_size]

    def input_tensor(self, frame_bgr: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
        """The frame as this model takes it at ``input_size`` (letterboxed, channel order, scale, NCHW),
        and where the frame was placed; what quantization calibrates on too."""
        import cv2

        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 BGR frame, got shape {frame_bgr.shape}")
        image, placement = letterbox(frame_bgr, input_size, centred=self._centred)
        if self._rgb:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        tensor = image.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        if self._normalise:
            tensor /= 255.0
        return np.ascontiguousarray(tensor), placement

    def detect(self, frame_bgr: np.ndarray, input_width: int | None = None) -> list[Detection]:
        """Objects in the frame. ``input_width`` is the long side of the model input for
        Ultralytics exports (the camera's ``detect_width``); other models keep their fixed size."""
        import cv2

        input_size = self.input_size_for(frame_bgr.shape[1], frame_bgr.shape[0], input_width)
        tensor, placement = self.input_tensor(frame_bgr, input_size)
        (output,) = self.session_for(input_size).run(None, {self._input_name: tensor})[:1]
        boxes, scores, class_ids = self._decode(output, input_size, self.score_threshold)
        if len(boxes) == 0:
            return []
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxesBatched(
            xywh.tolist(), scores.astype(float).tolist(), class_ids.astype(int).tolist(), self.score_threshold, NMS_IOU
        )
        kept = np.asarray(keep, dtype=int).reshape(-1)
        frame_boxes = placement.to_frame(boxes[kept])
        detections = [
            Detection(
                label=self.class_names[int(class_ids[i])],
                class_id=int(class_ids[i]),
                score=float(scores[i]),
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            )
            for i, b in zip(kept, frame_boxes, strict=True)
        ]
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


def load_detector(
    model: str = "yolov8n",
    *,
    score_threshold: float = 0.25,
    providers: list[str] | None = None,
    intra_op_threads: int | None = None,
    fit_input: bool = True,
) -> Detector:
    """Load a registered model; a provider that is not available falls back to CPU with a warning."""
    return OnnxDetector(model, score_threshold=score_threshold, providers=providers, intra_op_threads=intra_op_threads,
                        fit_input=fit_input)
