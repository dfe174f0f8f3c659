"""Stand-in cameras served by GStreamer's RTSP server (C), for benchmarks that need many of them.

`sharpeyes.rtsp_server.FootageServer` (aio-rtsp-toolkit, Python) costs about a core per 64
cameras on the 2-core bench box: half the machine the edge is judged on. GStreamer's RTSP server
moves each session's media in C threads: `filesrc ! qtdemux ! h264parse ! rtph264pay`. Every
session gets its own pipeline, so each starts at the file's first keyframe and cameras that
connect at different moments have different keyframe phases, as with the Python server.

The loop is in the file, not in the server: each clip is served as a copy repeated end to end
(`sharpeyes.bench.media.looped_clip`, a remux, no re-encode) that lasts `loop_s` (20 minutes by
default), after which that session ends as a camera that goes away would. An earlier version looped
by segment seeks from Python handlers in the streaming threads: now and then a pipeline stalled
right after PLAY, and once a session had been torn down, new ones were refused ("Invalid data
found when processing input") — a third contestant of `bench edge` could not open its cameras.
With no Python in the media path, 4 rounds of 16 sessions opened cleanly by hand and the server's
file descriptors returned to where they were; tests/bench/test_gst_rtsp_server.py checks three
rounds (three contestants) of 8.

Two halves in one file:

* `GstFootageServer` (imported by the bench, runs in the project's venv): the same interface as
  `FootageServer` (files, url(), start/stop, pid); its child is this file run by the *system*
  Python, the one that has PyGObject and the GStreamer typelibs (Debian's `python3-gi`,
  `gir1.2-gst-rtsp-server-1.0`; scripts/ensure-system.sh installs them);
* `_serve` (the child): it imports only the standard library and `gi`, so it runs there.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

# Debian's interpreter, where `apt-get install python3-gi` puts PyGObject (a venv does not see it).
SYSTEM_PYTHON = os.environ.get("SHARPEYES_GST_PYTHON", "/usr/bin/python3")
_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "missing = [n for n in ('filesrc', 'qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(n) is None]; "
          "print(' '.join(missing))")
INSTALL_HINT = ("GStreamer's RTSP server is not usable from the system Python: install the Debian packages "
                "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good "
                "gstreamer1.0-plugins-bad (scripts/ensure-system.sh does)")


def gst_unavailable() -> str | None:
    """None when the GStreamer server can run here, else why not (with the fix)."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found; {INSTALL_HINT}"
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} could not be probed ({exc}); {INSTALL_HINT}"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"{last}; {INSTALL_HINT}"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()}; {INSTALL_HINT}"
    return None


if __name__ != "__main__":
    # The parent half needs the project (broker.childproc via FootageServer); the child half must not.
    from collections.abc import Mapping
    from typing import Any

    from sharpeyes.bench.media import looped_clip
    from sharpeyes.rtsp_server import FootageServer

    LOOP_S = 1200.0  # a session lasts this long; a bench contestant's sessions last a few minutes

    class GstFootageServer(FootageServer):
        """`FootageServer`'s interface, served by GStreamer's RTSP server in the system Python.

        Each file is served as a looped copy lasting ``loop_s`` (the module docstring says why)."""

        server_kind = "gst"

        def __init__(self, files: Mapping[str, Path], *, loop_s: float = LOOP_S,
                     phases: Mapping[str, float] | None = None, **kwargs: Any) -> None:
            super().__init__(files, **kwargs)
            self.loop_s = loop_s
            # Stream name -> the second of its footage it starts at: independent cameras on one clip.
            self.phases = dict(phases or {})

        def _command(self) -> list[str]:
            return [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--dir", str(self.media_dir),
                    "--host", self.host, "--port", str(self.port)]

        def _phase_of(self, name: str) -> float:
            return self.phases.get(name, 0.0)

        def _served_file(self, source: Path, phase_s: float = 0.0) -> Path:
            return looped_clip(source, self.loop_s, start_s=phase_s)

        def _place_files(self) -> None:
            super()._place_files()
            # The child serves what it finds; a stale file from an earlier start must not linger.
            for stale in set(os.listdir(self.media_dir)) - set(self.files):
                (self.media_dir / stale).unlink(missing_ok=True)


def _serve(directory: str, host: str, port: int) -> None:  # pragma: no cover - runs in the system Python
    import gi  # type: ignore[import-not-found]  # the system Python's PyGObject, not the venv's

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    gi.require_version("GstRtsp", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # type: ignore[import-not-found]

    Gst.init(None)

    def log(text: str) -> None:
        print(f"gst-rtsp: {text}", flush=True)

    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(str(port))
    mounts = server.get_mount_points()
    names = sorted(os.listdir(directory))
    for name in names:
        path = os.path.join(directory, name)
        factory = GstRtspServer.RTSPMediaFactory()
        # Passthrough: the camera's own encoding, SPS/PPS sent with every keyframe as cameras do.
        # h264parse inserts them once per access unit; rtph264pay's config-interval would insert
        # them before every IDR *slice*, and FFmpeg then splits a multi-slice keyframe in two
        # packets (two decodes, a half picture). alignment=au keeps one frame per marker bit.
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1 ! video/x-h264,alignment=au '
                           f'! rtph264pay name=pay0 pt=96 config-interval=0 )')
        factory.set_shared(False)  # a pipeline per session: its own keyframe phase
        # Interleaved in the RTSP connection only, as every reader here asks: otherwise each session
        # also binds RTP and RTCP UDP sockets that nobody uses.
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        log(f"could not listen on {host}:{port} (address already in use?)")
        sys.exit(1)
    log(f"serving {len(names)} stream(s) at rtsp://{host}:{port}/")
    pool = server.get_session_pool()

    def reap() -> bool:
        # The pool only drops expired sessions when asked. A reader that goes away without a
        # TEARDOWN (a killed edge, a closed socket) leaves its session, pipeline and sockets
        # behind until then: run after run, they piled up until new sessions were refused.
        removed = pool.cleanup()
        if removed:
            log(f"removed {removed} expired session(s); {pool.get_n_sessions()} open")
        return True

    GLib.timeout_add_seconds(1, reap)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    log("RTSP server stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve footage files over RTSP with GStreamer, each once (sharpeyes)")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    args = parser.parse_args(argv)
    _serve(args.dir, args.host, args.port)


if __name__ == "__main__":
    main()
