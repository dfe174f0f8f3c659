"""`sharpeyes demo`: the whole product on one machine, from real parts.

A broker (Mosquitto, or the embedded amqtt broker when Mosquitto is missing), a real RTSP server
playing two clips from ../shared/media as cameras, central and one edge as child processes of
this one. Interactive mode runs until Ctrl-C; `--smoke` waits for both demo hazards to become
incidents through the REST API and exits 0, or exits 1 after a deadline saying what is missing.

Pure pieces (commands, environment, response parsing) are functions; `DemoRun` does the I/O.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from broker.childproc import Child
from broker.netutil import free_port, port_accepts, wait_for_http

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = Path("configs/demo.yaml")
DEMO_VAR = Path("var/demo")
DEMO_EDGE = "edge-1"
DEMO_FILES = ("street_parked_cars_720p.mp4", "elevator_escooter_20s.mp4", "indoor_people_walking.mp4")
# The lift camera's stream: the e-scooter comes and goes (sharpeyes.footage), so the door hold ends too.
LIFT_CLIP = "elevator_escooter_in_out.mp4"
RELAY_COIL = 0  # configs/demo.yaml: lift-1-door
REQUIRED_HAZARDS = ("fire_lane_blocked", "ebike_indoor")
SMOKE_DEADLINE_S = 180.0
SMOKE_USER = "monitor"
# What the demo writes under its state folder (see the commands below and _start_*).
DEMO_STATE = ("central.db*", "evidence", f"{DEMO_EDGE}-outbox.db*", "mosquitto", "broker", "rtsp", "jwt*", "*.secret")
FOOTAGE_CACHE = "footage"  # the spliced lift clip, kept between runs (it is rebuilt when missing)

BrokerChoice = Literal["auto", "mosquitto", "embedded"]


class DemoError(RuntimeError):
    """The demo cannot start or failed; the message says why and what to do."""


class DemoInterrupted(Exception):
    """Ctrl-C (or SIGTERM) arrived while the demo was still starting."""


# ---- pure pieces ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPorts:
    mqtt: int
    rtsp: int
    http: int
    protocol: Literal["5", "3.1.1"]
    relay: int


@dataclass(frozen=True)
class DemoLayout:
    root: Path
    media_dir: Path
    config: Path = DEMO_CONFIG  # relative to root, which is the children's working directory
    var: Path = DEMO_VAR

    @property
    def var_abs(self) -> Path:
        return self.var if self.var.is_absolute() else self.root / self.var


def sharpeyes_command() -> list[str]:
    """The `sharpeyes` CLI of the running interpreter's environment."""
    script = Path(sys.executable).parent / "sharpeyes"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sharpeyes.cli"]


def child_env(base: Mapping[str, str], ports: DemoPorts, layout: DemoLayout) -> dict[str, str]:
    """Environment for central and edge: configs/demo.yaml reads its ports from these."""
    env = dict(base)
    env.update(
        SHARPEYES_MQTT_PORT=str(ports.mqtt),
        SHARPEYES_RTSP_PORT=str(ports.rtsp),
        SHARPEYES_MQTT_PROTOCOL=ports.protocol,
        SHARPEYES_RELAY_PORT=str(ports.relay),
        SHARPEYES_VAR_DIR=str(layout.var),
        PYTHONUNBUFFERED="1",
    )
    return env


def central_argv(layout: DemoLayout, ports: DemoPorts) -> list[str]:
    return [
        *sharpeyes_command(), "central", "serve",
        "--config", str(layout.config),
        "--database-url", f"sqlite:///{layout.var / 'central.db'}",
        "--port", str(ports.http),
        "--evidence-dir", str(layout.var / "evidence"),
        # Default passwords, a generated token key and anonymous Open311: a demo, and every page says so.
        "--demo",
    ]


def edge_argv(layout: DemoLayout, edge: str = DEMO_EDGE) -> list[str]:
    return [
        *sharpeyes_command(), "edge", "run",
        "--config", str(layout.config),
        "--edge", edge,
        "--outbox", str(layout.var / f"{edge}-outbox.db"),
    ]


def incident_items(payload: Any) -> list[dict[str, Any]]:
    """Incidents from GET /api/v1/incidents: a bare list, or a page object with `items`."""
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        payload = payload["items"]
    if not isinstance(payload, list):
        raise DemoError(f"GET /api/v1/incidents returned {type(payload).__name__}, not a list of incidents")
    return [item for item in payload if isinstance(item, dict)]


def missing_hazards(incidents: Iterable[Mapping[str, Any]], required: Sequence[str] = REQUIRED_HAZARDS) -> list[str]:
    seen = {str(item.get("hazard")) for item in incidents}
    return [hazard for hazard in required if hazard not in seen]


def describe_incident(item: Mapping[str, Any]) -> str:
    fields = ("id", "hazard", "camera", "zone", "state", "condition", "started_at", "assigned_worker")
    return "  ".join(f"{key}={item[key]}" for key in fields if item.get(key) is not None)


@dataclass(frozen=True)
class Credential:
    username: str
    password: str
    role: str


def demo_credentials(config_path: Path) -> list[Credential]:
    """The logins configured in the demo site file (passwords there are demo-only)."""
    from broker.siteconfig import load_site_config

    site = load_site_config(config_path)
    return [Credential(u.username, u.secret() or "(from environment)", u.role) for u in site.users]


# ---- the API client used by --smoke ---------------------------------------------------------


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None

    def login(self, username: str, password: str) -> None:
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        request = urllib.request.Request(f"{self.base_url}/api/v1/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as response:
            self.token = json.load(response)["access_token"]

    def incidents(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{self.base_url}/api/v1/incidents?limit=500",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return incident_items(json.load(response))


# ---- orchestration --------------------------------------------------------------------------


class _Broker(Protocol):
    host: str
    port: int

    def start(self) -> Any: ...
    def stop(self, timeout: float = ...) -> object: ...
    def log_tail(self, lines: int = ...) -> str: ...


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


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
            _say(f"Mosquitto on {self.broker.host}:{self.broker.port} (log {self.layout.var / 'mosquitto' / 'mosquitto.log'})")
            return "5"
        from broker.embedded import BANNER, EmbeddedBroker

        print("=" * 78, flush=True)
        _say(BANNER)
        print("=" * 78, flush=True)
        self.broker = EmbeddedBroker(data_dir=self.layout.var_abs / "broker", announce=False)
        self.broker.start()
        _say(f"embedded amqtt broker on {self.broker.host}:{self.broker.port}, MQTT 3.1.1")
        return "3.1.1"

    def _start_footage(self) -> int:
        from sharpeyes.footage import lift_in_and_out
        from sharpeyes.rtsp_server import FootageServer

        lift = self.layout.var_abs / FOOTAGE_CACHE / LIFT_CLIP
        if not lift.is_file():
            _say(f"building {LIFT_CLIP}: the e-scooter in the lift, then 20 s without it")
            lift_in_and_out(self.layout.media_dir, lift)
        files = {DEMO_FILES[0]: self.layout.media_dir / DEMO_FILES[0], LIFT_CLIP: lift}
        self.footage = FootageServer(files, workdir=self.layout.var_abs / "rtsp")
        self.footage.start()
        for name in files:
            _say(f"camera footage at {self.footage.url(name)}")
        return int(self.footage.port)

    def _start_relay(self) -> int:
        from sharpeyes.relay_sim import CoilChange, RelayModuleSimulator

        def say(change: CoilChange) -> None:
            what = "ON: lift 1 door held open" if change.on else f"off ({'by the edge' if change.cause == 'write' else 'its watchdog'})"
            _say(f"relay module: coil {change.coil} {what}")

        self.relay = RelayModuleSimulator(coils=4, watchdog_s=5.0, on_change=say).start()
        _say(f"relay module (sharpeyes relay-sim, Modbus TCP) on 127.0.0.1:{self.relay.port}, door hold on coil {RELAY_COIL}")
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

    def announce(self, ports: DemoPorts) -> None:
        base = f"http://127.0.0.1:{ports.http}"
        lines = ["", f"  sharpeyes demo is running — console: {base}/", "  logins (demo passwords from configs/demo.yaml):"]
        try:
            lines += [f"    {c.username:<12} {c.password:<22} ({c.role})" for c in demo_credentials(self.layout.root / self.layout.config)]
        except Exception as exc:  # noqa: BLE001 - the demo still runs; the console shows the error too
            lines.append(f"    (could not read users: {exc})")
        lines += [f"  MQTT 127.0.0.1:{ports.mqtt} (protocol {ports.protocol}), RTSP 127.0.0.1:{ports.rtsp}",
                  "  Ctrl-C stops everything.", ""]
        print("\n".join(lines), flush=True)

    # -- running --

    def _dead_child(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    def wait_interactive(self) -> int:
        while not self.stop_requested.wait(0.5):
            dead = self._dead_child()
            if dead is not None:
                _say(f"{dead.name} exited with status {dead.returncode}; stopping the demo")
                return 1
        _say("stopping")
        return 0

    def wait_smoke(self, ports: DemoPorts, started: float) -> int:
        api = ApiClient(f"http://127.0.0.1:{ports.http}")
        password = next((c.password for c in demo_credentials(self.layout.root / self.layout.config)
                         if c.username == SMOKE_USER), None)
        if password is None:
            raise DemoError(f"configs/demo.yaml has no user {SMOKE_USER!r} for the smoke check")
        incidents: list[dict[str, Any]] = []
        last_error = ""
        while time.monotonic() - started < self.deadline_s:
            if self.stop_requested.wait(3.0):
                _say("interrupted")
                return 130
            dead = self._dead_child()
            if dead is not None:
                _say(f"SMOKE FAILED: {dead.name} exited with status {dead.returncode}")
                print(self.log_tails(), flush=True)
                return 1
            try:
                if api.token is None:
                    api.login(SMOKE_USER, password)
                incidents = api.incidents()
                last_error = ""
            except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                last_error = str(exc)
                api.token = None if isinstance(exc, urllib.error.HTTPError) and exc.code == 401 else api.token
                continue
            if not missing_hazards(incidents) and self._door_held():
                _say(f"SMOKE OK after {time.monotonic() - started:.0f} s: {len(incidents)} incident(s)")
                for item in incidents:
                    print(f"  {describe_incident(item)}", flush=True)
                return 0
        missing = missing_hazards(incidents)
        problems = [f"no {' or '.join(missing)} incident"] if missing else []
        if not self._door_held():
            problems.append(f"the lift door was never held (relay coil {RELAY_COIL} never set)")
        _say(f"SMOKE FAILED after {self.deadline_s:.0f} s: {'; '.join(problems)} "
             f"({len(incidents)} incident(s) seen: {sorted({str(i.get('hazard')) for i in incidents})})"
             + (f"; last API error: {last_error}" if last_error else ""))
        print(self.log_tails(), flush=True)
        return 1

    def _door_held(self) -> bool:
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
        run.announce(ports)
        return run.wait_smoke(ports, started) if smoke else run.wait_interactive()
    except DemoError as exc:
        _say(f"ERROR: {exc}")
        return 1
    except DemoInterrupted:
        _say("interrupted during start-up; stopping")
        return 130
    finally:
        run.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
