"""`sharpeyes bench edge`: N real RTSP cameras, the edge under test, the floor and the peer, in one run.

Order of a run: build the camera stream (cached), start RTSP servers serving it under N names
and one Mosquitto, then measure three contestants one after another, each in its own process and
over the same window length: the edge (fire-lane zones on every camera), the floor (bare decode
plus bare onnxruntime), and the peer (Ultralytics' streaming predictor). Each contestant gets a
warm-up (connect, load the model, first samples) that is not measured. Ratios are taken between
figures of the same run because the machine is shared and its speed varies from run to run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sharpeyes.bench import stats
from sharpeyes.bench.media import CameraProfile, camera_clip
from sharpeyes.bench.procstat import RssWatcher, boost, cpu_of, machine_busy

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

SITE, EDGE = "bench", "bench"
CAMERAS_PER_SERVER = 4
# The near kerb of the street clip, where a row of cars stays parked (as in configs/demo.yaml).
KERB_LANE = [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]]


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


@dataclass
class Contestant:
    """One measured process over its window."""

    name: str
    cameras: int
    window_s: float = 0.0
    window: tuple[float, float] | None = None  # monotonic clock, shared by all processes
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    cameras_sustained: int = 0
    on_time_share_min: float | None = None
    samples: int = 0
    detections: int = 0  # samples the detector ran on (the rest: the scene gate reused the last detections)
    decode_ms_per_sample: float | None = None
    infer_ms_per_sample: float | None = None
    sample_ms_p95: float | None = None
    reconnects: int = 0
    note: str | None = None
    # The machine is shared: how busy it was during the window, and how much of that was ours.
    machine_busy_cores: float | None = None
    rtsp_server_cores: float | None = None

    @property
    def cpu_ms_per_sample(self) -> float | None:
        """CPU per analysed frame: comparable even where a contestant fell behind and sampled less."""
        return self.cpu_s / self.samples * 1000 if self.samples else None

    @property
    def cpu_per_camera_s(self) -> float | None:
        if not self.window_s or not self.cameras:
            return None
        return stats.per_camera_second(self.cpu_s, self.cameras, self.window_s)


@dataclass
class BenchResult:
    options: dict[str, Any]
    started_at: str
    machine: dict[str, Any]
    stream: dict[str, Any]
    edge: Contestant
    edge_ungated: Contestant | None = None
    floor: Contestant | None = None
    peer: Contestant | None = None
    # The same predictor given the edge's own fitted graph instead of the file a user has.
    peer_fitted: Contestant | None = None
    alert_latency_ms: list[float] = field(default_factory=list)
    processing_latency_ms: list[float] = field(default_factory=list)
    alerts_expected: int = 0
    # Why a contestant was not run ("floor", "peer", "peer_fitted"): every null figure says why.
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The flat JSON object ``--json`` prints; keys named in the issue come first."""
        edge_cpu = self.edge.cpu_per_camera_s
        floor_cpu = self.floor.cpu_per_camera_s if self.floor else None
        peer_cpu = self.peer.cpu_per_camera_s if self.peer else None
        out: dict[str, Any] = {
            "cameras": self.edge.cameras,
            "cameras_sustained": self.edge.cameras_sustained,
            "cpu_per_camera_s": _round(edge_cpu, 5),
            "floor_cpu_per_camera_s": _round(floor_cpu, 5),
            "peer_cpu_per_camera_s": _round(peer_cpu, 5),
            "rss_mb": _round(self.edge.rss_mb, 1),
            "alert_latency_ms_p95": _round(stats.percentile(self.alert_latency_ms, 95), 0),
            "edge_vs_floor": _round(stats.ratio(edge_cpu, floor_cpu), 3),
            "edge_vs_peer": _round(stats.ratio(edge_cpu, peer_cpu), 3),
            "peer_fitted_cpu_per_camera_s": _round(self.peer_fitted.cpu_per_camera_s, 5) if self.peer_fitted else None,
            "edge_vs_peer_fitted": _round(stats.ratio(edge_cpu, self.peer_fitted.cpu_per_camera_s), 3)
            if self.peer_fitted else None,
            "decode_ms_per_sample": _round(self.edge.decode_ms_per_sample, 2),
            "infer_ms_per_sample": _round(self.edge.infer_ms_per_sample, 2),
            "sample_ms_p95": _round(self.edge.sample_ms_p95, 1),
            "on_time_share_min": _round(self.edge.on_time_share_min, 3),
            "alerts": len(self.alert_latency_ms),
            "alerts_expected": self.alerts_expected,
            "processing_latency_ms_p95": _round(stats.percentile(self.processing_latency_ms, 95), 0),
            "floor_rss_mb": _round(self.floor.rss_mb, 1) if self.floor else None,
            "peer_rss_mb": _round(self.peer.rss_mb, 1) if self.peer else None,
            "peer_fitted_rss_mb": _round(self.peer_fitted.rss_mb, 1) if self.peer_fitted else None,
            "peer_cameras": self.peer.cameras if self.peer else 0,
            "peer_note": self.peer.note if self.peer else None,
            "seconds": self.options["seconds"],
            "fps": self.options["fps"],
            "gop": self.options["gop"],
            "model": self.options["model"],
            "started_at": self.started_at,
            "machine": self.machine,
        }
        ungated = self.edge_ungated
        ungated_cpu = ungated.cpu_per_camera_s if ungated else None
        out["ungated_cpu_per_camera_s"] = _round(ungated_cpu, 5)
        out["gated_vs_ungated"] = _round(stats.ratio(edge_cpu, ungated_cpu), 3)
        out["ungated_vs_floor"] = _round(stats.ratio(ungated_cpu, floor_cpu), 3)
        out["gated_share"] = _round(1 - self.edge.detections / self.edge.samples, 3) if self.edge.samples else None
        out["changing_cameras"] = self.options.get("changing_cameras", 0)
        out["cpu_ms_per_sample"] = _round(self.edge.cpu_ms_per_sample, 1)
        out["samples"] = self.edge.samples
        out["machine_busy_cores"] = _round(self.edge.machine_busy_cores, 2)
        out["rtsp_server_cores"] = _round(self.edge.rtsp_server_cores, 2)
        for name, other in (("ungated", self.edge_ungated), ("floor", self.floor), ("peer", self.peer),
                            ("peer_fitted", self.peer_fitted)):
            if other is not None:
                out[f"{name}_cameras_sustained"] = f"{other.cameras_sustained}/{other.cameras}"
                out[f"{name}_on_time_share_min"] = _round(other.on_time_share_min, 3)
                out[f"{name}_decode_ms_per_sample"] = _round(other.decode_ms_per_sample, 2)
                out[f"{name}_infer_ms_per_sample"] = _round(other.infer_ms_per_sample, 2)
                out[f"{name}_machine_busy_cores"] = _round(other.machine_busy_cores, 2)
                out[f"{name}_cpu_ms_per_sample"] = _round(other.cpu_ms_per_sample, 1)
                out[f"{name}_samples"] = other.samples
                out[f"{name}_rss_mb"] = _round(other.rss_mb, 1)
        out["targets"] = targets(out)
        out["why"] = self._why_null(out)
        return out

    def _why_null(self, out: dict[str, Any]) -> dict[str, str]:
        """A reason for every figure (and target) that is null, so no reader has to guess."""
        def reason(contestant: str) -> str:
            ran = {"floor": self.floor, "peer": self.peer, "peer_fitted": self.peer_fitted,
                   "ungated": self.edge_ungated}[contestant]
            if contestant in self.skipped:
                return self.skipped[contestant]
            if ran is not None and ran.note and ran.cpu_per_camera_s is None:
                return f"{contestant} not measured: {ran.note}"
            return f"{contestant} measured no samples in the window"

        why: dict[str, str] = {}
        for key, value in [*out.items(), *(("targets." + k, v) for k, v in out["targets"].items())]:
            if value is not None:
                continue
            bare = key.removeprefix("targets.").removeprefix("edge_vs_")
            if "ungated" in bare:
                why[key] = reason("ungated")
            elif "peer_fitted" in bare:
                why[key] = reason("peer_fitted")
            elif "peer" in bare:
                why[key] = reason("peer")
            elif "floor" in bare:
                why[key] = reason("floor")
            elif "latency" in key:
                why[key] = "no alert reached the broker during the run"
            else:
                why[key] = "the edge measured no samples in the window"
        return why

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False)

    def details(self) -> dict[str, Any]:
        return {"summary": self.summary(), "edge": asdict(self.edge),
                "edge_ungated": self.edge_ungated and asdict(self.edge_ungated), "floor": self.floor and asdict(self.floor),
                "peer": self.peer and asdict(self.peer), "peer_fitted": self.peer_fitted and asdict(self.peer_fitted),
                "stream": self.stream}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def targets(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Issue 17's targets for 2 cores at 0.5 fps: every camera sustained, CPU per camera at most half
    the floor's and an eighth of the peer's, RSS at most 1.5 GB, alert latency p95 at most 3 s."""
    vs_peer, vs_floor = summary["edge_vs_peer"], summary["edge_vs_floor"]
    latency = summary["alert_latency_ms_p95"]
    return {
        "all_cameras_sustained": summary["cameras_sustained"] == summary["cameras"],
        "cpu_at_most_half_of_floor": None if vs_floor is None else vs_floor <= 0.5,
        "cpu_at_most_eighth_of_peer": None if vs_peer is None else vs_peer <= 1 / 8,
        "rss_at_most_1_5_gb": summary["rss_mb"] is not None and summary["rss_mb"] <= 1536,
        "alert_latency_p95_at_most_3_s": None if latency is None else latency <= 3000,
    }


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


# -- the parts ---------------------------------------------------------------------------------

SUBSTREAM = CameraProfile(width=640, height=360, fps=5, gop=10, bitrate=384_000)


def site_config(cameras: list[tuple[str, str, str | None]], broker_port: int, fps: float, dwell_s: float, model: str,
                gate: bool = True) -> dict[str, Any]:
    return {
        "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "edges": [{
            "id": EDGE,
            "cameras": [
                {
                    "id": camera_id,
                    "url": url,
                    **({"detect_url": detect_url} if detect_url else {}),
                    "detect_fps": fps,
                    "model": model,
                    "scene_gate": {"enabled": gate},
                    "zones": [{"id": "kerb-lane", "kind": "fire_lane", "polygon": KERB_LANE, "dwell_s": dwell_s,
                               "clear_s": 30, "realarm_s": 3600}],
                }
                for camera_id, url, detect_url in cameras
            ],
        }],
    }


class AlertClock:
    """Subscribes to the edge's events and times each fire-lane start against its dwell threshold."""

    def __init__(self, port: int, dwell_s: float) -> None:
        import paho.mqtt.client as mqtt

        self.dwell_s = dwell_s
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
        if event.get("hazard") != "fire_lane_blocked" or event.get("phase") != "start":
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


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    logfile = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.DEVNULL, stdout=logfile,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)
    finally:
        logfile.close()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _url_args(urls: list[str]) -> list[str]:
    return [arg for url in urls for arg in ("--url", url)]


def _cpu_total(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_of(pid).total_s
        except OSError:
            pass
    return total


def _counters_at(log_entries: list[dict[str, Any]], t: float) -> dict[str, Any]:
    """The counter snapshot logged closest to monotonic time ``t``."""
    return min(log_entries, key=lambda entry: abs(entry["t"] - t)) if log_entries else {"cameras": {}}


def measure(name: str, module: str, args: list[str], *, cameras: int, opts: BenchOptions, workdir: Path,
            server_pids: list[int] | None = None,
            env: dict[str, str] | None = None) -> tuple[Contestant, dict[str, Any], tuple[float, float]]:
    """Run one contestant: wait until every camera has sampled, settle, measure ``seconds``, stop."""
    out = workdir / f"{name}.json"
    ready = out.with_suffix(".ready")
    log_path = workdir / f"{name}.log"
    proc = _spawn([module, *args, "--out", str(out)], log_path, env)
    if opts.boost:
        boost(proc.pid)
    rss = RssWatcher(proc.pid).start()
    contestant = Contestant(name=name, cameras=cameras)
    try:
        deadline = time.monotonic() + opts.warmup_timeout_s
        while not ready.exists():
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode} before it was ready:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                contestant.note = f"not every camera sampled within {opts.warmup_timeout_s:.0f} s of start"
                break
            time.sleep(0.2)
        time.sleep(opts.settle_s)
        server0 = _cpu_total(server_pids or [])
        busy0, _ = machine_busy()
        t0, cpu0 = time.monotonic(), cpu_of(proc.pid)
        rss.measuring = True
        time.sleep(opts.seconds)
        t1, cpu1 = time.monotonic(), cpu_of(proc.pid)
        busy1, _ = machine_busy()
        if server_pids:
            contestant.rtsp_server_cores = (_cpu_total(server_pids) - server0) / (t1 - t0)
        contestant.machine_busy_cores = (busy1 - busy0) / (t1 - t0)
        rss.measuring = False
        contestant.window_s = t1 - t0
        contestant.window = (t0, t1)
        contestant.cpu_s = cpu1.total_s - cpu0.total_s
        contestant.rss_mb = rss.peak_mb or rss.last_mb
    finally:
        rss.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if not out.is_file():
        raise BenchError(f"{name} wrote no results:\n{_tail(log_path)}")
    return contestant, json.loads(out.read_text()), (t0, t1)


def summarise(contestant: Contestant, records: dict[str, Any], window: tuple[float, float], fps: float) -> Contestant:
    """Fill cadence, per-sample times and counters from a contestant's records over ``window``."""
    start_counters = _counters_at(records.get("counters", []), window[0])
    end_counters = _counters_at(records.get("counters", []), window[1])
    shares: list[float] = []
    sample_ms: list[float] = []
    infer_s = 0.0
    n_samples = 0
    decode_s = 0.0
    for camera, rows in records.get("samples", {}).items():
        contestant.detections += sum(1 for r in rows if window[0] <= r[0] < window[1] and (len(r) < 5 or r[4]))
        samples = [stats.Sample(frame_t=r[0], started=r[1], ended=r[2], infer_s=r[3]) for r in rows]
        kept = stats.cadence(samples, window, fps)
        shares.append(kept.share)
        contestant.cameras_sustained += int(kept.sustained)
        in_window = [s for s in samples if window[0] <= s.frame_t < window[1]]
        n_samples += len(in_window)
        infer_s += sum(s.infer_s for s in in_window)
        sample_ms += [(s.ended - s.started) * 1000 for s in in_window]
        a = start_counters.get("cameras", {}).get(camera)
        b = end_counters.get("cameras", {}).get(camera)
        if a and b:
            decode_s += b["decode_s"] - a["decode_s"]
            contestant.reconnects += b.get("reconnects", 0) - a.get("reconnects", 0)
    contestant.samples = n_samples
    contestant.on_time_share_min = min(shares) if shares else None
    if n_samples:
        contestant.infer_ms_per_sample = infer_s / n_samples * 1000
        contestant.decode_ms_per_sample = decode_s / n_samples * 1000 if start_counters.get("cameras") else None
        contestant.sample_ms_p95 = stats.percentile(sample_ms, 95)
    return contestant


def run_bench(opts: BenchOptions, progress: Callable[[str], None] = lambda text: None) -> BenchResult:
    from broker.mosquitto import MosquittoProcess
    from sharpeyes.rtsp_server import FootageServer

    if opts.cameras < 1:
        raise BenchError("--cameras must be at least 1")
    source = opts.source or default_source()
    if not source.is_file():
        raise BenchError(f"camera footage not found: {source} (the clip lives in ../shared/media; pass --source)")
    profile = CameraProfile(gop=opts.gop)
    progress(f"camera stream: {source.name} as 720p{profile.fps} H.264, GOP {profile.gop} (built once, then cached)")
    clip = camera_clip(source, profile)
    n_changing = round(opts.cameras * opts.changing) if opts.changing > 0 else 0
    changing_clip = None
    if n_changing:
        changing_source = opts.changing_source or default_changing_source()
        if not changing_source.is_file():
            raise BenchError(f"changing footage not found: {changing_source} (pass --changing-source, or --changing 0)")
        progress(f"scene mix: {n_changing} of {opts.cameras} cameras stream {changing_source.name} (cars moving through)")
        changing_clip = camera_clip(changing_source, profile)
    workdir = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="sharpeyes-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model_path, input_size = same_model_as_edge(opts.model, profile.width, profile.height, workdir)
    names = [f"cam-{i + 1:03d}" for i in range(opts.cameras)]
    # aio-rtsp-toolkit starts each session by reading the file's sample table on its event loop
    # (~0.3 s, more on a busy machine), so one server brings 32 cameras up over 10+ s and the
    # later ones hit the edge's 5 s open timeout. Real cameras are independent devices: a few
    # cameras per server process gives the same independence. Their CPU is measured apart.
    # With a sub-stream each camera is two sessions: half as many cameras per server keeps each
    # server's sessions (and its session start-up work) as without.
    per_server = max(1, CAMERAS_PER_SERVER // 2) if opts.substream else CAMERAS_PER_SERVER
    groups = [names[i : i + per_server] for i in range(0, len(names), per_server)]
    changing_names = set(names[:: max(1, round(opts.cameras / n_changing))][:n_changing]) if n_changing else set()
    sub_clip = changing_sub = None
    if opts.substream:
        progress(f"sub-stream: {SUBSTREAM.width}x{SUBSTREAM.height} {SUBSTREAM.fps} fps, GOP {SUBSTREAM.gop} beside each main stream")
        sub_clip = camera_clip(source, SUBSTREAM)
        changing_sub = camera_clip(opts.changing_source or default_changing_source(), SUBSTREAM) if changing_clip else None

    def streams(n: str) -> dict[str, Path]:
        changing_camera = n in changing_names and changing_clip is not None
        files = {f"{n}.mp4": changing_clip if changing_camera and changing_clip else clip}
        sub = changing_sub if changing_camera else sub_clip
        if sub is not None:
            files[f"{n}_sub.mp4"] = sub
        return files

    servers = [FootageServer({name: path for n in group for name, path in streams(n).items()},
                             workdir=workdir / f"rtsp-{k + 1}")
               for k, group in enumerate(groups)]
    broker = MosquittoProcess(data_dir=workdir / "mosquitto")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        for server in servers:
            server.start()
        broker.start()
        urls = [server.url(f"{n}.mp4") for server, group in zip(servers, groups, strict=True) for n in group]
        detect_urls = [server.url(f"{n}_sub.mp4") if opts.substream else None
                       for server, group in zip(servers, groups, strict=True) for n in group]
        server_pids = [server.pid for server in servers if server.pid]
        if opts.boost:
            granted = all([boost(pid) for pid in [os.getpid(), *server_pids, *([broker.pid] if broker.pid else [])]])
            progress("priority: the bench's processes run first" if granted else
                     "priority: --boost needs root or CAP_SYS_NICE; measuring at normal priority")
        cameras = list(zip(names, urls, detect_urls, strict=True))
        config_path = workdir / "site.yaml"
        config_path.write_text(yaml.safe_dump(site_config(cameras, broker.port, opts.fps, opts.dwell_s, opts.model,
                                                          gate=opts.gate), sort_keys=False))
        clock = AlertClock(broker.port, opts.dwell_s)
        try:
            progress(f"edge: {opts.cameras} cameras, fire lanes at {opts.fps} fps, {opts.seconds:.0f} s measured")
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
                     "changing_source": str(opts.changing_source or default_changing_source()) if n_changing else None},
            started_at=started_at,
            machine=machine_info(),
            stream={"model_input": f"{input_size[0]}x{input_size[1]}", "file": str(clip),
                    "width": profile.width, "height": profile.height, "fps": profile.fps,
                    "gop": profile.gop, "bitrate": profile.bitrate, "codec": "h264", "profile": profile.profile,
                    "detection_substream": (f"{SUBSTREAM.width}x{SUBSTREAM.height} {SUBSTREAM.fps} fps, GOP {SUBSTREAM.gop}, "
                                            f"{SUBSTREAM.bitrate // 1000} kbit/s" if opts.substream else None)},
            edge=edge,
            alert_latency_ms=sorted(clock.alert_ms),
            processing_latency_ms=sorted(clock.processing_ms),
            # The changing cameras (cars driving through a lot) have no parked car in their kerb lane.
            alerts_expected=opts.cameras - n_changing,
        )
        if opts.ungated and opts.gate:
            progress(f"edge without the scene gate: {opts.cameras} cameras")
            ungated_path = workdir / "site-ungated.yaml"
            ungated_path.write_text(yaml.safe_dump(site_config(cameras, broker.port, opts.fps, opts.dwell_s, opts.model,
                                                               gate=False), sort_keys=False))
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
            progress(f"floor: bare keyframe decode + onnxruntime on {opts.cameras} cameras")
            floor, records, window = measure(
                "floor", "sharpeyes.bench.floor",
                [*_url_args(urls), "--fps", str(opts.fps), "--model", str(model_path)],
                cameras=opts.cameras, opts=opts, workdir=workdir, server_pids=server_pids)
            result.floor = summarise(floor, records, window, opts.fps)
        if opts.peer:
            # The peer a user reaches for loads the published file, square input and all (the
            # issue's "YOLO(<the same onnx>)"); the edge fits that file to its cameras in memory.
            # Measured a second time on the edge's fitted graph, so both comparisons are on record.
            stock = published_model(opts.model)
            result.peer = _measure_peer(opts, urls, stock[0], stock[1], workdir, progress, server_pids)
            if (model_path, input_size) != stock:
                result.peer_fitted = _measure_peer(opts, urls, model_path, input_size, workdir, progress, server_pids,
                                                   name="peer_fitted")
            else:
                result.skipped["peer_fitted"] = "the edge runs the published graph unchanged: peer_fitted is the peer"
        return result
    finally:
        for server in servers:
            server.stop()
        broker.stop()
        if not opts.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def same_model_as_edge(model: str, frame_w: int, frame_h: int, workdir: Path) -> tuple[Path, tuple[int, int]]:
    """The model file and input size the edge's detector uses for these cameras' frames.

    The edge fits an Ultralytics export to the frame's shape and to the fire-lane profile's
    detect width in memory (models/reanchor.py); the floor and the peer get the same graph as a
    file, so all three do the same inference work.
    """
    from broker.zonekinds import ZONE_KINDS
    from models.detector import OnnxDetector
    from models.reanchor import reanchor_yolov8

    detector = OnnxDetector(model, intra_op_threads=1)
    size = detector.input_size_for(frame_w, frame_h, ZONE_KINDS["fire_lane"].sampling.detect_width)
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


def _measure_peer(opts: BenchOptions, urls: list[str], model_path: Path, input_size: tuple[int, int], workdir: Path,
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


STREET_CLIP = "street_parked_cars_720p.mp4"


def default_changing_source() -> Path:
    """Cars driving through a parking lot: a scene that keeps changing."""
    return default_source().parent / "parking_lot_traffic.mp4"


def default_source() -> Path:
    """The shared street clip: ../shared/media beside the checkout (pass --source elsewhere)."""
    root = Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "media" / STREET_CLIP
