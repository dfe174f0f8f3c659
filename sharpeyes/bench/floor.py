"""Child process: the floor. The least work that watching these cameras at this cadence needs.

Per camera one thread demuxes the RTSP stream with PyAV and decodes only the keyframes it samples
(single-threaded decoder); the frame is letterboxed to the model input and queued. Two inference
threads (one per core) run the queue through one shared onnxruntime session with one intra-op
thread each and no spin-waiting, so each inference costs only its own CPU and at most two
inferences hold activation memory at a time. No rules, no tracking, no evidence, no outbox, no
health: anything the edge spends above this is its own overhead.
"""

from __future__ import annotations

import argparse
import logging
import queue
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sharpeyes.bench.child import ChildRun

log = logging.getLogger(__name__)

# The floor's scheduler is ideal: a keyframe counts as due a quarter period early, so network
# jitter on a keyframe never pushes a sample to the next GOP.
EARLY_SHARE = 0.25


def make_session(model_path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


def to_tensor(rgb: np.ndarray, size: tuple[int, int] = (640, 640)) -> np.ndarray:
    """Centred letterbox into ``size`` (width, height), CHW float 0..1: what the YOLOv8 export
    expects and nothing more."""
    import cv2

    h, w = rgb.shape[:2]
    in_w, in_h = size
    scale = min(in_w / w, in_h / h)
    new_w, new_h = round(w * scale), round(h * scale)
    canvas = np.full((in_h, in_w, 3), 114, dtype=np.uint8)
    top, left = (in_h - new_h) // 2, (in_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[np.newaxis], dtype=np.float32) / 255.0


INFERENCE_THREADS = 2


class Inference:
    """The shared queue: camera threads put letterboxed frames, ``INFERENCE_THREADS`` run them."""

    def __init__(self, session: Any, stopping: threading.Event, cameras: int) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        _batch, _channels, height, width = session.get_inputs()[0].shape
        self.input_size = (int(width), int(height))
        self.stopping = stopping
        # Bounded like the edge's "newest frame only": room for one sample per camera; a sample
        # that finds it full is late anyway and is dropped (it shows as a missed sample).
        self.queue: queue.Queue[tuple[list[list[float]], float, float, float, np.ndarray]] = queue.Queue(
            maxsize=cameras)
        self.dropped = 0
        self.threads = [threading.Thread(target=self._run, name=f"infer-{i}", daemon=True) for i in range(INFERENCE_THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                samples, frame_t, decode_s, _queued, tensor = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            begin = time.monotonic()
            started = time.perf_counter()
            self.session.run(None, {self.input_name: tensor})
            samples.append([frame_t, begin, time.monotonic(), time.perf_counter() - started, decode_s])


class FloorCamera:
    def __init__(self, name: str, url: str, fps: float, inference: Inference, stopping: threading.Event,
                 start_delay_s: float = 0.0, all_frames: bool = False) -> None:
        self.name, self.url = name, url
        # Sampling faster than the keyframes come (lift cameras at 2 fps): every frame is decoded,
        # since an inter frame cannot be decoded without those before it.
        self.all_frames = all_frames
        self.start_delay_s = start_delay_s
        self.period = 1.0 / fps
        self.inference = inference
        self.stopping = stopping
        self.samples: list[list[float]] = []
        self.frames_in = 0
        self.frames_decoded = 0
        self.decode_s = 0.0
        self.thread = threading.Thread(target=self._run, name=f"floor-{name}", daemon=True)

    def _run(self) -> None:
        self.stopping.wait(self.start_delay_s)
        while not self.stopping.is_set():
            try:
                self._read()
            except Exception as exc:  # noqa: BLE001 - the floor reconnects like the edge does, without ceremony
                log.warning("floor camera %s: %s", self.name, exc)
                self.stopping.wait(0.5)

    def _read(self) -> None:
        from edge.camera import open_stream

        # The edge's own opener: a floor that read slower than the edge would flatter it.
        with open_stream(self.url, 5.0) as container:
            stream = container.streams.video[0]
            if not self.all_frames:
                stream.codec_context.skip_frame = "NONKEY"
            stream.codec_context.thread_count = 1  # one keyframe every few seconds: threads only add buffers
            next_due: float | None = None
            for packet in container.demux(stream):
                if self.stopping.is_set():
                    return
                if packet.dts is None:
                    continue
                self.frames_in += 1
                if not packet.is_keyframe and not self.all_frames:
                    continue
                now = time.monotonic()
                started = time.perf_counter()
                due = next_due is None or now >= next_due - EARLY_SHARE * self.period
                if not due:
                    if self.all_frames:  # decoded to keep the reference chain, not sampled
                        packet.decode()
                        self.decode_s += time.perf_counter() - started
                    continue  # an IDR frame stands alone: one that is not sampled need not be decoded
                for frame in packet.decode():
                    rgb = frame.to_ndarray(format="rgb24")
                    decode_s = time.perf_counter() - started
                    self.decode_s += decode_s
                    self.frames_decoded += 1
                    try:
                        self.inference.queue.put_nowait((self.samples, now, decode_s, time.monotonic(),
                                                          to_tensor(rgb, self.inference.input_size)))
                    except queue.Full:
                        self.inference.dropped += 1
                    next_due = now + self.period if next_due is None or now - next_due >= self.period \
                        else next_due + self.period
                    started = time.perf_counter()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sharpeyes bench: bare decode plus bare onnxruntime")
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--fps", type=float, required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--all-frames", action="store_true", help="decode every frame (sampling above the keyframe rate)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    child = ChildRun(args.out)
    inference = Inference(make_session(args.model), child.stopping, len(args.url))
    inference.start()
    # Cameras connect over the same spread as the edge's (edge/node.py): each RTSP session starts
    # its stream at a keyframe, so the connection moments set the cameras' keyframe phases.
    spread = min(2.0, 0.1 * len(args.url))
    cameras = [FloorCamera(f"cam-{i + 1:03d}", url, args.fps, inference, child.stopping, random.uniform(0, spread),
                           all_frames=args.all_frames)
               for i, url in enumerate(args.url)]
    for camera in cameras:
        camera.thread.start()

    def counters() -> dict[str, Any]:
        return {
            "cameras": {
                c.name: {"frames_in": c.frames_in, "frames_decoded": c.frames_decoded, "decode_s": c.decode_s, "reconnects": 0}
                for c in cameras
            }
        }

    try:
        child.run_until_stopped(lambda: all(len(c.samples) >= 2 for c in cameras), counters)
    finally:
        for camera in cameras:
            camera.thread.join(5)
        child.dump({"samples": {c.name: c.samples for c in cameras}, "dropped": inference.dropped})


if __name__ == "__main__":
    main()
