"""The stand-in cameras: the encoded clips, the RTSP servers that serve them under N camera names,
the site configuration the edge reads them from, and the clock that times the edge's alerts."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sharpeyes.bench.edge_bench.options import BenchError, BenchOptions, default_changing_source
from sharpeyes.bench.media import CameraProfile, camera_clip, clip_seconds

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

    from sharpeyes.rtsp_server import FootageServer

SITE, EDGE = "bench", "bench"
CAMERAS_PER_SERVER = 4
# The near kerb of the street clip, where a row of cars stays parked (as in configs/demo.yaml).
KERB_LANE = [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]]
# The road's middle of that clip, between the two parked rows: cars drive through, none stops.
ROAD_LANE = [[0.30, 0.60], [0.85, 0.60], [0.85, 0.72], [0.30, 0.72]]
SUBSTREAM = CameraProfile(width=640, height=360, fps=5, gop=10, bitrate=384_000)
LIFT_CAMERA = Path(__file__).resolve().parents[3] / "configs" / "cameras" / "elevator.yaml"
# A lift camera keeps the shared lift clip's portrait frame (816x1150): the main stream as cameras
# send it (25 fps, 2 s GOP), and a half-size 5 fps sub-stream that the edge decodes every frame of.
LIFT_MAIN = CameraProfile(width=816, height=1150)
LIFT_SUB = CameraProfile(width=408, height=576, fps=5, gop=10, bitrate=384_000)
# The gst server's sessions run in C threads and start in microseconds: more cameras per process.
CAMERAS_PER_GST_SERVER = 16
HAZARD_EVENT = {"fire_lane": "fire_lane_blocked", "ebike": "ebike_indoor"}


def _zones(lift: bool, dwell_s: float, blocked: bool = True) -> list[dict[str, Any]]:
    if lift:
        # The lift car's floor as drawn for the e-scooter clip (the lift footage keeps its frame).
        zone = yaml.safe_load(LIFT_CAMERA.read_text(encoding="utf-8"))["zones"][0]
        return [{**zone, "dwell_s": dwell_s}]
    lane, polygon = ("kerb-lane", KERB_LANE) if blocked else ("road-lane", ROAD_LANE)
    return [{"id": lane, "kind": "fire_lane", "polygon": polygon, "dwell_s": dwell_s, "clear_s": 30, "realarm_s": 3600}]


def spread(names: list[str], count: int) -> list[str]:
    """``count`` of ``names`` spread evenly over the list (so over the servers, too)."""
    if count <= 0:
        return []
    return names[:: max(1, round(len(names) / count))][:count]


def site_config(cameras: list[tuple[str, str, str | None]], broker_port: int, fps: float, dwell_s: float, model: str,
                gate: bool = True, lift: bool = False, detect_width: int | None = None,
                unblocked: frozenset[str] = frozenset(), evidence_stream: str = "auto") -> dict[str, Any]:
    """``unblocked``: the street cameras whose fire lane is the road's middle, not the parked kerb."""
    return {
        "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "edges": [{
            "id": EDGE,
            "cameras": [
                {
                    "id": camera_id,
                    "url": url,
                    **({"detect_url": detect_url, "evidence_stream": evidence_stream} if detect_url else {}),
                    "detect_fps": fps,
                    "model": model,
                    "scene_gate": {"enabled": gate},
                    **({"detect_width": detect_width} if detect_width else {}),
                    # The lift footage cuts between two rooms, which the tamper watch rightly takes
                    # for a camera turned away; a lift camera's view never changes like that.
                    **({"tamper": {"enabled": False}} if lift else {}),
                    "zones": _zones(lift, dwell_s, blocked=camera_id not in unblocked),
                }
                for camera_id, url, detect_url in cameras
            ],
        }],
    }


class AlertClock:
    """Subscribes to the edge's events and times each start of ``hazard`` against its dwell threshold."""

    def __init__(self, port: int, dwell_s: float, hazard: str = "fire_lane_blocked") -> None:
        import paho.mqtt.client as mqtt

        self.dwell_s = dwell_s
        self.hazard = hazard
        self.alert_ms: list[float] = []
        self.processing_ms: list[float] = []
        self.cameras: set[str] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sharpeyes-bench-{os.getpid()}",
                                   protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(f"sharpeyes/v1/{SITE}/{EDGE}/event", qos=1)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise BenchError("could not subscribe to the benchmark broker")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = datetime.now(UTC)
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        if event.get("hazard") != self.hazard or event.get("phase") != "start":
            return
        started = datetime.fromisoformat(event["started_at"])
        observed = datetime.fromisoformat(event["observed_at"])
        threshold = started.timestamp() + self.dwell_s
        with self._lock:
            self.alert_ms.append((received.timestamp() - threshold) * 1000)
            self.processing_ms.append((received - observed).total_seconds() * 1000)
            self.cameras.add(event.get("camera", ""))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()



@dataclass
class CameraFootage:
    """The clips the stand-in cameras stream: the parked-cars street on most, a changing scene on some
    (or the lift loop on every camera with ``--hazard ebike``)."""

    source: Path
    profile: CameraProfile
    clip: Path
    changing_cameras: int = 0
    changing_clip: Path | None = None
    sub_clip: Path | None = None
    changing_sub: Path | None = None
    sub_profile: CameraProfile = SUBSTREAM

    def add_substreams(self, opts: BenchOptions, progress: Callable[[str], None]) -> None:
        sub = self.sub_profile
        progress(f"sub-stream: {sub.width}x{sub.height} {sub.fps} fps, GOP {sub.gop} beside each main stream")
        self.sub_clip = camera_clip(self.source, sub)
        self.changing_sub = (camera_clip(opts.changing_source or default_changing_source(), sub)
                             if self.changing_clip else None)

    def describe(self, input_size: tuple[int, int], substream: bool) -> dict[str, Any]:
        profile, sub = self.profile, self.sub_profile
        return {"model_input": f"{input_size[0]}x{input_size[1]}", "file": str(self.clip),
                "width": profile.width, "height": profile.height, "fps": profile.fps,
                "gop": profile.gop, "bitrate": profile.bitrate, "codec": "h264", "profile": profile.profile,
                "detection_substream": (f"{sub.width}x{sub.height} {sub.fps} fps, GOP {sub.gop}, "
                                        f"{sub.bitrate // 1000} kbit/s" if substream else None)}


def encode_footage(opts: BenchOptions, source: Path, progress: Callable[[str], None]) -> CameraFootage:
    """The main-stream clips, built once and then cached (sharpeyes.bench.media)."""
    if opts.lift:
        profile = CameraProfile(width=LIFT_MAIN.width, height=LIFT_MAIN.height, gop=opts.gop)
        progress(f"lift camera stream: {source.name} as {profile.width}x{profile.height} {profile.fps} fps H.264, "
                 f"GOP {profile.gop} (built once, then cached)")
        # Every lift camera streams the same loop; the moments they connect set their phases.
        return CameraFootage(source=source, profile=profile, clip=camera_clip(source, profile), sub_profile=LIFT_SUB)
    profile = CameraProfile(gop=opts.gop)
    progress(f"camera stream: {source.name} as 720p{profile.fps} H.264, GOP {profile.gop} (built once, then cached)")
    footage = CameraFootage(source=source, profile=profile, clip=camera_clip(source, profile))
    n_changing = round(opts.cameras * opts.changing) if opts.changing > 0 else 0
    if n_changing:
        changing_source = opts.changing_source or default_changing_source()
        if not changing_source.is_file():
            raise BenchError(f"changing footage not found: {changing_source} (pass --changing-source, or --changing 0)")
        progress(f"scene mix: {n_changing} of {opts.cameras} cameras stream {changing_source.name} (cars moving through)")
        footage.changing_cameras = n_changing
        footage.changing_clip = camera_clip(changing_source, profile)
    return footage


def resolve_camera_server(asked: str, progress: Callable[[str], None]) -> tuple[str, str | None]:
    """The server kind that will run, and why it is not the one asked for (None when it is)."""
    if asked != "gst":
        return asked, None
    from sharpeyes.gst_rtsp_server import gst_unavailable

    why = gst_unavailable()
    if why is None:
        return "gst", None
    # Loud: the Python server costs several times as much CPU, which the edge's box then lacks.
    progress(f"WARNING: camera server: falling back to the Python RTSP server ({why})")
    return "python", why


class StandInCameras:
    """N camera names served by a few RTSP server processes: a main stream each, and a sub-stream."""

    def __init__(self, names: list[str], footage: CameraFootage, workdir: Path, substream: bool,
                 server: str = "python", session_s: float = 300.0, phases: int = 1) -> None:
        from sharpeyes.gst_rtsp_server import GstFootageServer
        from sharpeyes.rtsp_server import FootageServer

        self.names = names
        self.substream = substream
        self.server_kind = server
        self._footage = footage
        # aio-rtsp-toolkit starts each session by reading the file's sample table on its event loop
        # (~0.3 s, more on a busy machine), so one server brings 32 cameras up over 10+ s and the
        # later ones hit the edge's 5 s open timeout. Real cameras are independent devices: a few
        # cameras per server process gives the same independence. Their CPU is measured apart.
        # With a sub-stream each camera is two sessions: half as many cameras per server keeps each
        # server's sessions (and its session start-up work) as without.
        per_server = CAMERAS_PER_GST_SERVER if server == "gst" else CAMERAS_PER_SERVER
        if substream:
            per_server = max(1, per_server // 2)
        self.groups = [names[i : i + per_server] for i in range(0, len(names), per_server)]
        n_changing = footage.changing_cameras
        self.changing_names = set(spread(names, n_changing))
        # The gst server plays a looped copy of each clip once: long enough for one contestant's
        # sessions (twice its longest run), and no longer, since every session start reads the
        # copy's whole sample table.
        # Cameras on one clip show the same moment when they connect together; with ``phases`` > 1
        # camera i starts at (i mod phases) / phases of the clip (gst only: its loop is in the file).
        clip_s = clip_seconds(footage.clip) if phases > 1 and server == "gst" else 0.0
        phase_of = {n: (i % phases) * clip_s / phases for i, n in enumerate(names)}

        def serve(group: list[str], where: Path) -> FootageServer:
            files = {name: path for n in group for name, path in self._streams(n).items()}
            if server == "gst":
                offsets = {name: phase_of[n] for n in group for name in self._streams(n)}
                return GstFootageServer(files, workdir=where, loop_s=session_s, phases=offsets)
            return FootageServer(files, workdir=where)

        self.servers: list[FootageServer] = [serve(group, workdir / f"rtsp-{k + 1}") for k, group in enumerate(self.groups)]

    def _streams(self, n: str) -> dict[str, Path]:
        footage = self._footage
        changing_camera = n in self.changing_names and footage.changing_clip is not None
        files = {f"{n}.mp4": footage.changing_clip if changing_camera and footage.changing_clip else footage.clip}
        sub = footage.changing_sub if changing_camera else footage.sub_clip
        if sub is not None:
            files[f"{n}_sub.mp4"] = sub
        return files

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def urls(self) -> list[str]:
        return [server.url(f"{n}.mp4") for server, group in zip(self.servers, self.groups, strict=True) for n in group]

    def detect_urls(self) -> list[str | None]:
        return [server.url(f"{n}_sub.mp4") if self.substream else None
                for server, group in zip(self.servers, self.groups, strict=True) for n in group]

    def pids(self) -> list[int]:
        return [server.pid for server in self.servers if server.pid]
