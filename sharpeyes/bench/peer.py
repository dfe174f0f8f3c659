"""Child process: the peer. What a user would reach for first: Ultralytics' streaming predictor.

One ``YOLO(<the same onnx>).predict(source=<rtsp url>, stream=True, vid_stride=...)`` per camera,
each in its own thread with its own model object (Ultralytics' advice for threads). RTSP over TCP
as the edge uses (``OPENCV_FFMPEG_CAPTURE_OPTIONS``), set by the parent.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

from sharpeyes.bench.child import ChildRun

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the peer needs Ultralytics and PyTorch (CPU build), locked in requirements/export.txt: run `make bench-deps` "
    "(or .venv/bin/pip install --require-hashes --no-deps -r requirements/export.txt), or run the benchmark with --no-peer"
)


def peer_available() -> bool:
    return importlib.util.find_spec("ultralytics") is not None and importlib.util.find_spec("torch") is not None


def _torchvision_or_stand_in() -> str:
    """Ultralytics imports torchvision for streams and then uses its NMS. Where no torchvision
    build matches the installed CPU torch (offline machines), Ultralytics' own ``TorchNMS.nms``,
    written to give the same result, stands in, so that the peer runs its ordinary path."""
    try:
        import torchvision  # noqa: F401

        return "torchvision"
    except Exception:  # noqa: BLE001 - a torchvision built for another torch fails with RuntimeError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    from ultralytics.utils.nms import TorchNMS

    stand_in = types.ModuleType("torchvision")
    stand_in.__dict__["ops"] = types.SimpleNamespace(nms=TorchNMS.nms)
    sys.modules["torchvision"] = stand_in
    return "ultralytics TorchNMS (no usable torchvision)"


class PeerCamera:
    def __init__(self, name: str, url: str, model_path: Path, vid_stride: int, imgsz: tuple[int, int],
                 stopping: threading.Event) -> None:
        self.name, self.url, self.model_path, self.vid_stride, self.imgsz = name, url, model_path, vid_stride, imgsz
        self.stopping = stopping
        self.samples: list[list[float]] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"peer-{name}", daemon=True)

    def _run(self) -> None:
        from ultralytics import YOLO

        try:
            model = YOLO(str(self.model_path), task="detect")
            last = time.monotonic()
            for result in model.predict(source=self.url, stream=True, vid_stride=self.vid_stride, imgsz=self.imgsz,
                                        device="cpu", verbose=False):
                now = time.monotonic()
                speed: dict[str, Any] = getattr(result, "speed", {}) or {}
                infer_s = float(speed.get("inference") or 0.0) / 1000.0
                # The predictor hands over frames only once analysed: the arrival is the end.
                self.samples.append([now, last, now, infer_s, 0.0])
                last = now
                if self.stopping.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - reported in the results, the other cameras go on
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("peer camera %s failed: %s", self.name, self.error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sharpeyes bench: Ultralytics' streaming predictor")
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--vid-stride", type=int, required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--imgsz", default="640,640", help="model input height,width (the edge's fitted size)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    height, width = (int(v) for v in args.imgsz.split(","))

    child = ChildRun(args.out)
    nms = _torchvision_or_stand_in()
    cameras = [PeerCamera(f"cam-{i + 1:03d}", url, args.model, args.vid_stride, (height, width), child.stopping)
               for i, url in enumerate(args.url)]
    for camera in cameras:
        camera.thread.start()
    try:
        child.run_until_stopped(lambda: all(len(c.samples) >= 2 for c in cameras), dict)
    finally:
        child.dump({
            "samples": {c.name: c.samples for c in cameras},
            "errors": {c.name: c.error for c in cameras if c.error},
            "nms": nms,
        })
        os._exit(0)  # the predictor's reader threads may sit in a blocking OpenCV read


if __name__ == "__main__":
    main()
