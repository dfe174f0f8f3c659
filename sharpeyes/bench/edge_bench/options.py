"""What an edge benchmark run is asked to do, and where its footage is by default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STREET_CLIP = "street_parked_cars_720p.mp4"
HAZARDS = ("fire_lane", "ebike")
EVIDENCE_STREAMS = ("auto", "always", "on_demand")
CAMERA_SERVERS = ("gst", "python")
# The cadence each hazard is sampled at unless --fps says otherwise (broker/zonekinds.py).
DEFAULT_FPS = {"fire_lane": 0.5, "ebike": 2.0}
# Loop phases unless --phases says otherwise: lifts ride independently, so six phases 10 s apart
# in the 60 s lift loop (at most a sixth of the lifts see the e-scooter together). In step (1),
# every lift sees it in the same seconds, a building where every lift is busy at once. The street
# clip is parked cars: its phase changes nothing.
DEFAULT_PHASES = {"fire_lane": 1, "ebike": 6}


class BenchError(RuntimeError):
    """The benchmark could not run; the message says what to fix."""


@dataclass(frozen=True)
class BenchOptions:
    cameras: int = 32
    seconds: float = 60.0
    fps: float = 0.5
    gop: int = 50
    dwell_s: float = 10.0
    model: str = "yolov8n"
    peer: bool = True
    peer_cameras: int = 2
    floor: bool = True
    warmup_timeout_s: float = 90.0
    settle_s: float = 3.0
    source: Path | None = None
    workdir: Path | None = None
    boost: bool = False  # top CPU priority for the bench's processes on a machine shared with other work
    gate: bool = True  # the edge runs with its scene-change gate (edge/scene_gate.py)
    ungated: bool = True  # and is measured a second time without it, in the same run
    # The scene mix: this share of the cameras streams footage that keeps changing (cars driving
    # through a parking lot) instead of the parked-cars street, so the gate is measured honestly.
    changing: float = 0.25
    changing_source: Path | None = None
    # Each camera also offers a 640x360 sub-stream (5 fps, a keyframe every 2 s, as NVR set-ups
    # configure them); the edge detects on it, and its evidence comes from the main stream. The
    # floor and the peer decode the main stream, as an edge without a sub-stream must.
    substream: bool = True
    # "gst": GStreamer's RTSP server (C) serves the stand-in cameras, so they take little of the
    # box the edge is judged on; "python": aio-rtsp-toolkit (sharpeyes.rtsp_server), as before.
    camera_server: str = "gst"
    # "fire_lane": street cameras at 0.5 fps (issue 17); "ebike": lift cameras at 2 fps, indoor
    # zones, scene gate on (issue 28), on footage spliced from the shared lift clips.
    hazard: str = "fire_lane"
    # The detector's input long side for every camera (the camera setting ``detect_width``);
    # None: the zone kind's default (480 for fire lanes, 640 for lifts).
    detect_width: int | None = None
    # Loop phases of the cameras' footage (gst server): 1, every camera starts the clip as it
    # connects (within 2 s of the others: every lift sees the e-scooter together); N, camera i
    # starts at (i mod N) / N of the clip, as independent cameras would.
    phases: int = 1
    # The share of the street cameras (the changing ones aside) whose kerb lane holds the parked
    # cars; the others watch the road's middle, where traffic passes and nothing stops. 1.0: every
    # lane blocked at once, the worst case; a city's fire lanes are empty most of the time, and an
    # empty lane's camera does not open its main stream (edge/evidence_stream.py).
    blocked: float = 1.0
    # The cameras' evidence_stream (broker/cameraconfig.py): "auto", the main stream on demand;
    # "always", open all the time, as before on-demand lifts (to measure what it costs).
    evidence_stream: str = "auto"

    @property
    def lift(self) -> bool:
        return self.hazard == "ebike"


def default_changing_source() -> Path:
    """Cars driving through a parking lot: a scene that keeps changing."""
    return default_source().parent / "parking_lot_traffic.mp4"


def default_source() -> Path:
    """The shared street clip: ../shared/media beside the checkout (pass --source elsewhere)."""
    root = Path(__file__).resolve().parents[3]
    return root.parent / "shared" / "media" / STREET_CLIP
