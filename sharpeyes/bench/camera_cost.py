"""`sharpeyes bench cameras`: what the stand-in cameras cost, per server, and what reading them
costs, per way of opening a stream, in one run.

Each server (GStreamer's RTSP server in C, and aio-rtsp-toolkit in Python) serves the bench's own
camera clips (main stream and sub-stream of the street) to N clients that only read packets
(PyAV demux, no decode, one thread per stream as the edge reads them), one server after the
other over the same window. Figures:

- the servers' CPU seconds per stream-second (utime + stime of their processes from /proc);
- the readers' CPU per packet and context switches per packet (this process's rusage: its other
  threads sleep), for each reader style:
  - ``edge``: the edge's opener (``edge.camera.open_stream``, FFmpeg's own socket timeout);
  - ``pyav-timeout``: PyAV's ``timeout=`` (its interrupt callback takes the GIL on every I/O
    poll), what the edge did before; kept as the baseline the edge's figure is read against;
- the share of the streams' frames delivered, which checks every stream kept its real-time rate.
"""

from __future__ import annotations

import resource
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sharpeyes.bench.procstat import cpu_of

READER_STYLES = ("edge", "pyav-timeout")


@dataclass
class ServerCost:
    server: str
    streams: int
    seconds: float
    cpu_s: float
    frames: int  # frames the readers received in the window, all streams together
    expected_frames: float  # what the streams' frame rates call for over the window
    reader: str = "edge"
    reader_cpu_s: float = 0.0
    reader_switches: int = 0  # voluntary and involuntary context switches of the readers' process

    @property
    def reader_us_per_packet(self) -> float:
        return 1e6 * self.reader_cpu_s / self.frames if self.frames else float("nan")

    @property
    def reader_switches_per_packet(self) -> float:
        return self.reader_switches / self.frames if self.frames else float("nan")

    @property
    def cpu_per_stream_s(self) -> float:
        return cost_per_stream_second(self.cpu_s, self.streams, self.seconds)

    @property
    def delivered_share(self) -> float:
        return self.frames / self.expected_frames if self.expected_frames else 0.0


def cost_per_stream_second(cpu_s: float, streams: int, seconds: float) -> float:
    return cpu_s / (streams * seconds) if streams and seconds > 0 else float("nan")


class _Reader:
    """Reads one RTSP stream's packets (no decode) and counts those of the measured window."""

    def __init__(self, url: str, stopping: threading.Event, style: str = "edge") -> None:
        self.url = url
        self.style = style
        self.stopping = stopping
        self.counting = False
        self.frames = 0
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"reader-{url.rsplit('/', 1)[-1]}")

    def _open(self) -> Any:
        import av

        from edge.camera import open_stream

        if self.style == "pyav-timeout":
            return av.open(self.url, options={"rtsp_transport": "tcp"}, timeout=(10.0, 5.0))
        return open_stream(self.url, 10.0)

    def _run(self) -> None:
        try:
            with self._open() as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if self.stopping.is_set():
                        return
                    if packet.dts is not None and self.counting:
                        self.frames += 1
        except Exception as exc:  # noqa: BLE001 - reported as a figure, the other streams go on
            if not self.stopping.is_set():  # the server stopping under a blocked read is no failure
                self.error = str(exc)


def _cpu(pids: list[int]) -> float:
    return sum(cpu_of(pid).total_s for pid in pids)


def _own_usage() -> tuple[float, int]:
    """This process's CPU seconds and context switches so far: the readers' while they run."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw


def _measure_one(kind: str, files: dict[str, Path], fps: dict[str, int], seconds: float, workdir: Path,
                 settle_s: float = 3.0, reader: str = "edge") -> ServerCost:
    from sharpeyes.bench.edge_bench.cameras import CAMERAS_PER_GST_SERVER, CAMERAS_PER_SERVER
    from sharpeyes.gst_rtsp_server import GstFootageServer
    from sharpeyes.rtsp_server import FootageServer

    cls = GstFootageServer if kind == "gst" else FootageServer
    # Grouped as `bench edge` groups them (edge_bench/cameras.py): the Python server starts its
    # sessions one after another, so more streams per process would miss the readers' open timeout.
    per_server = (CAMERAS_PER_GST_SERVER if kind == "gst" else CAMERAS_PER_SERVER)
    names = list(files)
    groups = [names[i : i + per_server] for i in range(0, len(names), per_server)]
    servers = [cls({n: files[n] for n in group}, workdir=workdir / f"{kind}-{k + 1}") for k, group in enumerate(groups)]
    stopping = threading.Event()
    readers: list[_Reader] = []
    try:
        for server in servers:
            server.start()
        readers = [_Reader(server.url(n), stopping, reader) for server, group in zip(servers, groups, strict=True) for n in group]
        for item in readers:
            item.thread.start()
            time.sleep(0.05)  # spread the sessions' starts like the edge's cameras
        time.sleep(settle_s + 0.05 * len(readers))
        pids = [server.pid for server in servers if server.pid]
        t0, cpu0, own0 = time.monotonic(), _cpu(pids), _own_usage()
        for item in readers:
            item.counting = True
        time.sleep(seconds)
        for item in readers:
            item.counting = False
        t1, cpu1, own1 = time.monotonic(), _cpu(pids), _own_usage()
    finally:
        stopping.set()
        for server in servers:
            server.stop()
        for item in readers:
            item.thread.join(5)
    errors = [r.error for r in readers if r.error]
    if errors:
        raise RuntimeError(f"{kind} server: {len(errors)} stream(s) failed: {errors[0]}")
    window = t1 - t0
    return ServerCost(server=kind, streams=len(files), seconds=window, cpu_s=cpu1 - cpu0,
                      frames=sum(r.frames for r in readers), expected_frames=sum(fps.values()) * window,
                      reader=reader, reader_cpu_s=own1[0] - own0[0], reader_switches=own1[1] - own0[1])


def measure(cameras: int, seconds: float, servers: tuple[str, ...], workdir: Path,
            readers: tuple[str, ...] = ("edge",)) -> list[ServerCost]:
    """Each server in turn serving ``cameras`` cameras (a 720p25 main stream and a 360p5 sub-stream
    each), read by each reader style in turn."""
    from sharpeyes.bench.edge_bench.cameras import SUBSTREAM
    from sharpeyes.bench.edge_bench.options import default_source
    from sharpeyes.bench.media import CameraProfile, camera_clip

    main_profile = CameraProfile()
    main, sub = camera_clip(default_source(), main_profile), camera_clip(default_source(), SUBSTREAM)
    files: dict[str, Path] = {}
    fps: dict[str, int] = {}
    for i in range(cameras):
        files[f"cam-{i + 1:03d}.mp4"], fps[f"cam-{i + 1:03d}.mp4"] = main, main_profile.fps
        files[f"cam-{i + 1:03d}_sub.mp4"], fps[f"cam-{i + 1:03d}_sub.mp4"] = sub, SUBSTREAM.fps
    return [_measure_one(kind, files, fps, seconds, workdir / f"{kind}-{reader}", reader=reader)
            for kind in servers for reader in readers]


def as_dicts(costs: list[ServerCost]) -> list[dict[str, Any]]:
    return [{**asdict(c), "cpu_per_stream_s": round(c.cpu_per_stream_s, 6), "delivered_share": round(c.delivered_share, 3),
             "reader_us_per_packet": round(c.reader_us_per_packet, 1),
             "reader_switches_per_packet": round(c.reader_switches_per_packet, 2)}
            for c in costs]
