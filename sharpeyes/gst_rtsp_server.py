"""Stand-in cameras served by GStreamer's RTSP server (C), for benchmarks that need many of them.

`sharpeyes.rtsp_server.FootageServer` (aio-rtsp-toolkit, Python) costs about a core per 64
cameras on the 2-core bench box: half the machine the edge is judged on. GStreamer's RTSP server
moves each session's media in C threads: `filesrc ! qtdemux ! h264parse ! rtph264pay`, looping
the file gaplessly with segment seeks (RTP timestamps keep rising across the loop, as a camera's
do). Every session gets its own pipeline, so each starts at the file's first keyframe and
cameras that connect at different moments have different keyframe phases, as with the Python
server.

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
    from sharpeyes.rtsp_server import FootageServer

    class GstFootageServer(FootageServer):
        """`FootageServer`'s interface, served by GStreamer's RTSP server in the system Python."""

        server_kind = "gst"

        def _command(self) -> list[str]:
            return [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--dir", str(self.media_dir),
                    "--host", self.host, "--port", str(self.port)]

        def _place_files(self) -> None:
            super()._place_files()
            # The child serves what it finds; a stale file from an earlier start must not linger.
            for stale in set(os.listdir(self.media_dir)) - set(self.files):
                (self.media_dir / stale).unlink(missing_ok=True)


def _serve(directory: str, host: str, port: int) -> None:  # pragma: no cover - runs in the system Python
    import gi  # type: ignore[import-not-found]  # the system Python's PyGObject, not the venv's

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found]

    Gst.init(None)

    def log(text: str) -> None:
        print(f"gst-rtsp: {text}", flush=True)

    def frame_gap(pay_sink: Gst.Pad) -> int:
        """One frame's duration, from the stream's caps (0 where they name no frame rate)."""
        caps = pay_sink.get_current_caps()
        ok, num, den = caps.get_structure(0).get_fraction("framerate") if caps else (False, 0, 1)
        return Gst.util_uint64_scale(Gst.SECOND, den, num) if ok and num > 0 else 0

    def loop_back(pipeline: Gst.Element, pay_sink: Gst.Pad) -> bool:
        # Non-flushing: the segment's base advances, so running time and RTP timestamps go on
        # rising across the loop instead of jumping back. The base advances to the last frame's
        # timestamp, not its end: without the pad offset the loop's first frame would share the
        # last frame's RTP timestamp (clients merge the two).
        pay_sink.set_offset(pay_sink.get_offset() + frame_gap(pay_sink))
        ok, duration = pipeline.query_duration(Gst.Format.TIME)
        pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT, Gst.SeekType.SET, 0,
                      Gst.SeekType.SET if ok else Gst.SeekType.NONE, duration if ok else -1)
        return False

    def start_looping(pipeline: Gst.Element) -> bool:
        # The first seek turns on segment mode: the demuxer then posts SEGMENT_DONE at the file's
        # end instead of EOS, which would end the session like a camera dying after one clip.
        ok, duration = pipeline.query_duration(Gst.Format.TIME)
        pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT,
                      Gst.SeekType.SET, 0, Gst.SeekType.SET if ok else Gst.SeekType.NONE, duration if ok else -1)
        return False

    def on_sync(bus: Gst.Bus, message: Gst.Message, pipeline: Gst.Element, pay_sink: Gst.Pad,
                state: dict[str, bool]) -> None:
        # Posted from streaming threads: seek from the main loop instead.
        if message.type == Gst.MessageType.SEGMENT_DONE:
            GLib.idle_add(loop_back, pipeline, pay_sink)
        elif message.type == Gst.MessageType.ASYNC_DONE and not state["looping"]:
            # The first preroll is done (the pipeline is PAUSED): a seek is possible now.
            state["looping"] = True
            GLib.idle_add(start_looping, pipeline)

    def on_configure(factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        pipeline = element.get_parent()
        pay_sink = element.get_by_name("pay0").get_static_pad("sink")
        bus = pipeline.get_bus()
        # rtsp-media owns the bus watch; a sync handler sees the messages beside it.
        bus.enable_sync_message_emission()
        bus.connect("sync-message", on_sync, pipeline, pay_sink, {"looping": False})

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
        factory.connect("media-configure", on_configure)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        log(f"could not listen on {host}:{port}")
        sys.exit(1)
    log(f"serving {len(names)} stream(s) at rtsp://{host}:{port}/")
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    log("RTSP server stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve footage files over RTSP with GStreamer, looping (sharpeyes)")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    args = parser.parse_args(argv)
    _serve(args.dir, args.host, args.port)


if __name__ == "__main__":
    main()
