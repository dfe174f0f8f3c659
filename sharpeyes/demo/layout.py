"""The demo's layout: its files, ports and folders, and the command lines and environment of the
children (central and the edge) that configs/demo.yaml is read by."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = Path("configs/demo.yaml")
DEMO_VAR = Path("var/demo")
DEMO_EDGE = "edge-1"
DEMO_FILES = ("street_parked_cars_720p.mp4", "elevator_escooter_20s.mp4", "indoor_people_walking.mp4")
# The lift camera's stream: the e-scooter comes and goes (sharpeyes.footage), so the door hold ends too.
LIFT_CLIP = "elevator_escooter_in_out.mp4"
RELAY_COIL = 0  # configs/demo.yaml: lift-1-door
# What the demo writes under its state folder (see the commands below and DemoRun._start_* in processes.py).
DEMO_STATE = ("central.db*", "evidence", f"{DEMO_EDGE}-outbox.db*", "mosquitto", "broker", "rtsp", "jwt*", "*.secret")
FOOTAGE_CACHE = "footage"  # the spliced lift clip, kept between runs (it is rebuilt when missing)

BrokerChoice = Literal["auto", "mosquitto", "embedded"]


class DemoError(RuntimeError):
    """The demo cannot start or failed; the message says why and what to do."""


class DemoInterrupted(Exception):
    """Ctrl-C (or SIGTERM) arrived while the demo was still starting."""


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
