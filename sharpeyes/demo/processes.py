"""The demo's processes: `DemoRun` starts the broker, the footage server, the relay module, central
and the edge, watches them, and stops them in order; `run_demo` is what the CLI calls."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from broker.childproc import Child
from broker.netutil import free_port, port_accepts, wait_for_http
from sharpeyes.demo.layout import (
    DEMO_FILES,
    DEMO_STATE,
    DEMO_VAR,
    FOOTAGE_CACHE,
    LIFT_CLIP,
    PROJECT_ROOT,
    RELAY_COIL,
    BrokerChoice,
    DemoError,
    DemoInterrupted,
    DemoLayout,
    DemoPorts,
    central_argv,
    child_env,
    edge_argv,
)
from sharpeyes.demo.printing import announce, say
from sharpeyes.demo.smoke import SMOKE_DEADLINE_S, wait_smoke


class _Broker(Protocol):
    host: str
    port: int

    def start(self) -> Any: ...
    def stop(self, timeout: float = ...) -> object: ...
    def log_tail(self, lines: int = ...) -> str: ...



@dataclass
class DemoRun:
    layout: DemoLayout
    smoke: bool = False
    http_port: int | None = None
    broker_choice: BrokerChoice = "auto"
    deadline_s: float = SMOKE_DEADLINE_S
    stop_requested: threading.Event = field(default_factory=threading.Event)
    broker: _Broker | None = None
    footage: Any = None
    relay: Any = None  # sharpeyes.relay_sim.RelayModuleSimulator: the lift door's relay module
    children: list[Child] = field(default_factory=list)

    # -- start-up --

    def _check_inputs(self) -> None:
        config = self.layout.root / self.layout.config
        if not config.is_file():
            raise DemoError(f"demo site configuration not found: {config}")
        missing = [name for name in DEMO_FILES if not (self.layout.media_dir / name).is_file()]
        if missing:
            raise DemoError(
                f"demo footage missing in {self.layout.media_dir}: {', '.join(missing)} "
                "(the clips live in ../shared/media beside the checkout; pass --media-dir to use another folder)"
            )

    def _prepare_var(self) -> None:
        var = self.layout.var_abs
        var.mkdir(parents=True, exist_ok=True)
        if self.smoke:
            # Each smoke run proves the chain from nothing: no old incidents, no old outbox. Only
            # what the demo itself writes is removed, whatever folder --var-dir names.
            for pattern in DEMO_STATE:
                for path in var.glob(pattern):
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    def _start_broker(self) -> Literal["5", "3.1.1"]:
        from broker.mosquitto import MosquittoProcess, mosquitto_available

        choice = self.broker_choice
        if choice == "auto":
            choice = "mosquitto" if mosquitto_available() else "embedded"
        if choice == "mosquitto":
            self.broker = MosquittoProcess(data_dir=self.layout.var_abs / "mosquitto")
            self.broker.start()
            say(f"Mosquitto on {self.broker.host}:{self.broker.port} (log {self.layout.var / 'mosquitto' / 'mosquitto.log'})")
            return "5"
        from broker.embedded import BANNER, EmbeddedBroker

        print("=" * 78, flush=True)
        say(BANNER)
        print("=" * 78, flush=True)
        self.broker = EmbeddedBroker(data_dir=self.layout.var_abs / "broker", announce=False)
        self.broker.start()
        say(f"embedded amqtt broker on {self.broker.host}:{self.broker.port}, MQTT 3.1.1")
        return "3.1.1"

    def _start_footage(self) -> int:
        from sharpeyes.footage import lift_in_and_out
        from sharpeyes.rtsp_server import FootageServer

        lift = self.layout.var_abs / FOOTAGE_CACHE / LIFT_CLIP
        if not lift.is_file():
            say(f"building {LIFT_CLIP}: the e-scooter in the lift, then 20 s without it")
            lift_in_and_out(self.layout.media_dir, lift)
        files = {DEMO_FILES[0]: self.layout.media_dir / DEMO_FILES[0], LIFT_CLIP: lift}
        self.footage = FootageServer(files, workdir=self.layout.var_abs / "rtsp")
        self.footage.start()
        for name in files:
            say(f"camera footage at {self.footage.url(name)}")
        return int(self.footage.port)

    def _start_relay(self) -> int:
        from sharpeyes.relay_sim import CoilChange, RelayModuleSimulator

        def say_coil(change: CoilChange) -> None:
            what = "ON: lift 1 door held open" if change.on else f"off ({'by the edge' if change.cause == 'write' else 'its watchdog'})"
            say(f"relay module: coil {change.coil} {what}")

        self.relay = RelayModuleSimulator(coils=4, watchdog_s=5.0, on_change=say_coil).start()
        say(f"relay module (sharpeyes relay-sim, Modbus TCP) on 127.0.0.1:{self.relay.port}, door hold on coil {RELAY_COIL}")
        return int(self.relay.port)

    def _http_port(self) -> int:
        if self.http_port is None:
            return free_port() if self.smoke else 8080
        return self.http_port

    def start(self) -> DemoPorts:
        self._check_inputs()
        self._prepare_var()
        http = self._http_port()
        if port_accepts("127.0.0.1", http):
            raise DemoError(f"port {http} is already in use; pass --port with a free port")
        protocol = self._start_broker()
        assert self.broker is not None
        ports = DemoPorts(mqtt=self.broker.port, rtsp=self._start_footage(), http=http, protocol=protocol,
                          relay=self._start_relay())
        env = child_env(os.environ, ports, self.layout)

        central = Child("central", central_argv(self.layout, ports), cwd=self.layout.root, env=env).start()
        self.children.append(central)
        base = f"http://127.0.0.1:{ports.http}"
        try:
            wait_for_http(f"{base}/healthz", 90, what="central",
                          still_alive=lambda: central.running and not self.stop_requested.is_set())
        except (TimeoutError, RuntimeError) as exc:
            if self.stop_requested.is_set():
                raise DemoInterrupted from None
            raise DemoError(f"{exc}\n{self.log_tails()}") from None
        self.children.append(Child("edge-1", edge_argv(self.layout), cwd=self.layout.root, env=env).start())
        return ports

    # -- running --

    def dead_child(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    def wait_interactive(self) -> int:
        while not self.stop_requested.wait(0.5):
            dead = self.dead_child()
            if dead is not None:
                say(f"{dead.name} exited with status {dead.returncode}; stopping the demo")
                return 1
        say("stopping")
        return 0

    def door_held(self) -> bool:
        return self.relay is not None and bool(self.relay.switched_on(RELAY_COIL))

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for child in self.children:
            parts.append(f"--- last lines of {child.name} (status {child.returncode}) ---")
            parts.extend(child.tail(lines))
        if self.broker is not None:
            parts.append("--- broker log ---")
            parts.append(self.broker.log_tail(15))
        if self.footage is not None:
            parts.append("--- rtsp server log ---")
            parts.append(self.footage.log_tail(15))
        return "\n".join(parts)

    # -- shutdown --

    def stop(self) -> None:
        # Edge first (it flushes its outbox while the broker is still up), then central, then the
        # infrastructure they were talking to.
        for child in reversed(self.children):
            child.stop(timeout=15)
        if self.footage is not None:
            self.footage.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.broker is not None:
            self.broker.stop()


def run_demo(*, smoke: bool, http_port: int | None, media_dir: Path | None = None,
             broker: BrokerChoice = "auto", var_dir: Path | None = None,
             deadline_s: float = SMOKE_DEADLINE_S, root: Path = PROJECT_ROOT) -> int:
    """Entry point for the CLI: returns the process exit status."""
    layout = DemoLayout(root=root, media_dir=media_dir or root.parent / "shared" / "media",
                        var=var_dir.resolve() if var_dir is not None else DEMO_VAR)
    run = DemoRun(layout, smoke=smoke, http_port=http_port, broker_choice=broker, deadline_s=deadline_s)

    def request_stop(signum: int, frame: object) -> None:
        run.stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        ports = run.start()
        announce(ports, run.layout)
        return wait_smoke(run, ports, started) if smoke else run.wait_interactive()
    except DemoError as exc:
        say(f"ERROR: {exc}")
        return 1
    except DemoInterrupted:
        say("interrupted during start-up; stopping")
        return 130
    finally:
        run.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
