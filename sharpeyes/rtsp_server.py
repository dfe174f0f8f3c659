"""A real RTSP server on loopback that plays footage files as if they were cameras.

Tests and the demo point the edge at `rtsp://127.0.0.1:PORT/<file name>`; the server is
aio-rtsp-toolkit's file server (passthrough, no re-encoding) in a child process. Two things
differ from its `rtsp-server` console script, both handled here:

* it resolves symlinks and refuses files outside its directory, so the files are placed in a
  private directory as hard links (copies across file systems);
* it plays a file once and then closes the session unless the URL asks for `play_count=0`. A
  camera does not stop after twenty seconds, so the child runs the same server with "forever" as
  the default; a URL may still ask for `?play_count=N` to end after N plays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from broker.childproc import ManagedProcess
from broker.netutil import free_port, wait_for_port

# How long the file-reading thread sleeps when the session's packet queue is full (the queue
# holds ~1.3 s of 25 fps video, so this is far below anything a client could notice).
HANDOFF_POLL_S = 0.02
PORT_ATTEMPTS = 3


class FootageServerError(RuntimeError):
    """The RTSP server could not be prepared or did not start; carries the tail of its log."""


def place_file(source: Path, target: Path) -> None:
    """Put `source` at `target` as a hard link, or as a copy when linking is impossible."""
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        # Other file system, or a file system without hard links.
        shutil.copyfile(source, target)


class FootageServer(ManagedProcess):
    """Serve `files` (URL name -> file) at rtsp://HOST:PORT/<name>, each looping forever."""

    def __init__(
        self,
        files: Mapping[str, Path],
        *,
        port: int | None = None,
        workdir: Path | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 15.0,
    ) -> None:
        if not files:
            raise FootageServerError("FootageServer needs at least one file to serve")
        self.files = {name: Path(path) for name, path in files.items()}
        for name, path in self.files.items():
            if "/" in name or name in ("", ".", ".."):
                raise FootageServerError(f"stream name {name!r} must be a plain file name")
            if not path.is_file():
                raise FootageServerError(f"footage file for stream {name!r} not found: {path}")
        self.host = host
        self._port_chosen = port is None
        self.port = port if port is not None else free_port(host)
        self.control_port = free_port(host)
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="sharpeyes-rtsp-"))
        self.media_dir = self.workdir / "media"
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._placed = False

    @property
    def log_path(self) -> Path:
        return self.workdir / "rtsp_server.log"

    def url(self, name: str) -> str:
        if name not in self.files:
            raise KeyError(f"FootageServer does not serve {name!r}; it serves {sorted(self.files)}")
        return f"rtsp://{self.host}:{self.port}/{name}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_path})"

    def _place_files(self) -> None:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        served: dict[tuple[Path, float], Path] = {}
        for name, source in self.files.items():
            key = (source, self._phase_of(name))
            if key not in served:
                served[key] = self._served_file(source, key[1])
            place_file(served[key], self.media_dir / name)
        self._placed = True

    def _phase_of(self, name: str) -> float:
        """The second of its footage stream NAME starts at (a subclass that loops files may offset it)."""
        return 0.0

    def _served_file(self, source: Path, phase_s: float = 0.0) -> Path:
        """The file the server reads for SOURCE (a subclass may serve a derived copy)."""
        return source

    def _command(self) -> list[str]:
        """The child's command line (sharpeyes.gst_rtsp_server serves the same files from C)."""
        return [sys.executable, "-m", "sharpeyes.rtsp_server", "--dir", str(self.media_dir), "--host", self.host,
                "--port", str(self.port), "--control-port", str(self.control_port)]

    def start(self) -> FootageServer:
        """Start serving; returns once the RTSP port accepts connections. Ports this object chose
        itself are chosen again when another socket took them in the meantime (a bench starts
        dozens of servers beside hundreds of client connections)."""
        if self.running:
            return self
        if not self._placed:
            self._place_files()
        for attempt in range(PORT_ATTEMPTS):
            try:
                return self._start_once()
            except FootageServerError as exc:
                if not (self._port_chosen and attempt + 1 < PORT_ATTEMPTS and "already in use" in str(exc)):
                    raise
                self.port, self.control_port = free_port(self.host), free_port(self.host)
        raise AssertionError("unreachable")

    def _start_once(self) -> FootageServer:
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                # Unbuffered so the log (read by tests and failure messages) is current.
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        finally:
            logfile.close()
        try:
            wait_for_port(self.host, self.port, self.start_timeout, still_alive=lambda: self.running,
                          what="RTSP footage server")
        except (TimeoutError, RuntimeError) as exc:
            self.kill()
            raise FootageServerError(f"{exc}\n--- {self.log_path} (tail) ---\n{self.log_tail()}") from None
        return self

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise FootageServerError("RTSP footage server is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but no packet flows, like a hung camera."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _before_terminate(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM until it runs again

    def stop(self, timeout: float = 5.0) -> int | None:
        return super().stop(timeout)

    def close(self) -> None:
        """Stop, and delete the working directory if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FootageServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"FootageServer({self.host}:{self.port}, {state}, {sorted(self.files)})"


def _serve(directory: str, host: str, port: int, control_port: int) -> None:
    """Child process: aio-rtsp-toolkit's server with looping as the default play count."""
    import asyncio
    import logging
    import threading
    import time

    from aio_rtsp_toolkit import server as rtsp

    # The toolkit's default logger prints RTCP reports at DEBUG every few seconds per client;
    # INFO keeps connects, plays and loop boundaries, which tests and operators read.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s rtsp: %(message)s")
    rtsp.logger = logging.getLogger("sharpeyes.rtsp")

    handoff_lock = threading.Lock()
    in_flight: weakref.WeakKeyDictionary[asyncio.Queue, int] = weakref.WeakKeyDictionary()

    def _hand_over(queue: asyncio.Queue, item: object) -> None:
        with handoff_lock:
            in_flight[queue] -= 1
        queue.put_nowait(item)

    class FrameBurstSession(rtsp.RtspServerSession):
        """Sends each video frame's RTP packets in one socket write, as an IP camera does.

        The toolkit paces the packets of a frame evenly over the frame's duration: one timer and
        one write per ~1.4 KB packet, ~180 wake-ups a second per 2 Mbit/s camera. For 32 cameras
        that costs the box two thirds of a core, which a real camera spends on its own chip.
        Frames still leave at their media time, so the stream keeps its real-time rate.
        """

        _burst: list[bytes] | None = None

        async def _send_paced_rtp_payloads(self, state: Any, payloads: Any, timestamp: Any, media_time: Any,
                                            duration_seconds: Any) -> None:  # the toolkit's own signature
            if not payloads:
                return
            await self._sleep_until_media_time(state, media_time)
            self._burst = []
            try:
                for payload, marker in payloads:
                    await self._send_rtp_packet(state, payload, timestamp=timestamp, marker=marker)
            finally:
                burst, self._burst = self._burst, None
            async with self.write_lock:
                try:
                    await self.sock.send(b"".join(burst))
                except OSError as exc:
                    raise ConnectionResetError(*exc.args) from exc

        async def _send_interleaved_frame(self, channel: int, payload: bytes) -> None:
            if self._burst is None:
                await super()._send_interleaved_frame(channel, payload)
                return
            self._burst.append(b"$" + bytes([channel]) + len(payload).to_bytes(2, "big") + payload)

        def _threadsafe_queue_put(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: object,
                                  stop_event: threading.Event) -> bool:
            """Hand one item from the file-reading thread to the event loop.

            The toolkit does this with ``run_coroutine_threadsafe`` and waits for the result: a
            task, two futures and two loop wake-ups for every packet. Here the item is scheduled
            with ``call_soon_threadsafe`` once the queue has room for it (this thread is its only
            producer, so counting what is queued and what is on its way is exact).
            """
            while not stop_event.is_set():
                with handoff_lock:
                    on_its_way = in_flight.get(queue, 0)
                    room = queue.maxsize <= 0 or queue.qsize() + on_its_way < queue.maxsize
                    if room:
                        in_flight[queue] = on_its_way + 1
                if room:
                    try:
                        loop.call_soon_threadsafe(_hand_over, queue, item)
                    except RuntimeError:  # the loop is closing
                        return False
                    return True
                time.sleep(HANDOFF_POLL_S)
            return False

    # The toolkit's server builds its sessions from this module-level name.
    rtsp.RtspServerSession = FrameBurstSession

    class LoopingRtspServer(rtsp.RtspServer):
        def parse_play_count(self, uri: str) -> int:
            # 0 means "forever" to the toolkit; its default of 1 would end the stream like a
            # camera dying after one clip length.
            asked = "play_count" in uri.lower()
            return super().parse_play_count(uri) if asked else 0

    async def run() -> None:
        server = LoopingRtspServer(directory=directory, host=host, port=port, control_port=control_port)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def quiet_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
            # Python 3.11's stream callback reports client tasks cancelled at shutdown as errors.
            if not isinstance(context.get("exception"), asyncio.CancelledError):
                loop.default_exception_handler(context)

        loop.set_exception_handler(quiet_cancel)
        serving = asyncio.create_task(server.serve_forever())
        await stop.wait()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await server.close()
        logging.getLogger("sharpeyes.rtsp").info("RTSP server stopped")

    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve footage files over RTSP, looping (sharpeyes)")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args(argv)
    _serve(args.dir, args.host, args.port, args.control_port)


if __name__ == "__main__":
    main()
