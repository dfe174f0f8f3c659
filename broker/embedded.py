"""An embedded pure-Python MQTT broker (amqtt) for `sharpeyes demo` on machines without Mosquitto.

It speaks MQTT 3.1.1 only, keeps nothing across restarts and has no per-device auth, so clients
must connect with protocol 3.1.1 and nothing but the demo may use it. It runs in a child Python
process (`python -m broker.embedded`), which gives it the same start/stop/kill behaviour as
MosquittoProcess and keeps its event loop away from the caller's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from broker.childproc import ManagedProcess
from broker.logsetup import setup_logging
from broker.netutil import free_port, wait_for_port

BANNER = "EMBEDDED DEMO BROKER (amqtt) — no passwords, no ACL, no TLS: not for production; install mosquitto"
PROTOCOL = "3.1.1"

log = logging.getLogger(__name__)


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker did not start; the message carries the tail of its log."""


def amqtt_config(host: str, port: int) -> dict[str, object]:
    """The amqtt configuration: one anonymous TCP listener, no $SYS chatter or packet logging."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


class EmbeddedBroker(ManagedProcess):
    """Same shape as MosquittoProcess: `.host`, `.port`, `.start()`, `.stop()`, `.kill()`."""

    protocol = PROTOCOL

    def __init__(self, port: int | None = None, data_dir: Path | None = None, *, host: str = "127.0.0.1",
                 start_timeout: float = 20.0, announce: bool = True) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="sharpeyes-amqtt-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        self.announce = announce  # False when the caller shows the banner itself
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "amqtt.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_path})"

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        if self.announce:
            log.warning(BANNER)
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "broker.embedded", "--host", self.host, "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            logfile.close()
        try:
            wait_for_port(self.host, self.port, self.start_timeout, still_alive=lambda: self.running,
                          what="embedded amqtt broker")
        except (TimeoutError, RuntimeError) as exc:
            self.kill()
            raise EmbeddedBrokerError(f"{exc}\n--- {self.log_path} (tail) ---\n{self.log_tail()}") from None
        return self

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


async def _serve(host: str, port: int) -> None:
    from amqtt.broker import Broker

    broker = Broker(amqtt_config(host, port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=BANNER)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args(argv)
    # amqtt logs every packet at INFO; setup_logging keeps it (and transitions) to warnings.
    setup_logging("INFO")
    log.warning("%s — listening on %s:%d, MQTT %s only", BANNER, args.host, args.port, PROTOCOL)
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
