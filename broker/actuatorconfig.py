"""Actuators in an edge's configuration: the outputs a zone drives while its hazard lasts.

An e-bike wheeled into an elevator car should hold the doors open and play a warning within a
second or two, not wait for a grid worker. Each actuator is one output the edge may drive; a zone
lists the actuators it holds on ``start`` and releases on ``end`` (``ZoneConfig.actuators``).

Fail-safe by construction: every kind is either momentary or timed by the device itself, so an
edge that crashes, loses power or loses the network cannot leave a door held. The edge re-arms a
hold while the hazard lasts, well inside the device's own timing, and gives up after
``max_hold_s`` (then a person decides). Credentials are names of variables in the edge's own
environment (``password_env``, ``secret_env``): they never travel in a configuration message.
See docs/actuation.md for the wiring and what must never be wired.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from broker.topics import ID_PATTERN

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$", max_length=64)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]

MAX_HOLD_S_DEFAULT = 90.0
ActuatorKind = Literal["modbus_tcp", "hikvision_isapi", "http", "audio"]


class _Actuator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str | None = Field(None, max_length=80, description="shown in the console, e.g. lift A door hold")
    max_hold_s: float = Field(MAX_HOLD_S_DEFAULT, gt=0, le=600, description="longest hold; then it is released "
                              "and the incident escalated to a person")
    timeout_s: float = Field(1.0, gt=0, le=10, description="how long one command to the device may take")

    def rearm_s(self) -> float:
        """How often a hold is renewed: well inside the device's own timing, so one lost renewal
        does not drop the output while the hazard lasts."""
        return max(0.5, self.hold_window_s() / 3)

    def hold_window_s(self) -> float:
        """How long the device keeps the output on after the last renewal, by its own timing."""
        raise NotImplementedError

    def environment_problems(self) -> list[str]:
        """What this process's environment lacks to drive the actuator (names of keys)."""
        return []


def _missing_env(key: str, name: str | None) -> list[str]:
    if name is not None and name not in os.environ:
        return [f"{key}: environment variable {name} is not set (fix: export {name}=... on the edge)"]
    return []


class ModbusTcpActuator(_Actuator):
    """A relay module's coil over Modbus TCP (pymodbus), its normally-open contact wired across the
    door-open button. The module's output watchdog (configured on the module, often called
    "communication timeout" or "flash/pulse time") drops the coil ``watchdog_s`` after the last
    write; the edge re-writes it while holding."""

    kind: Literal["modbus_tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=247, description="the module's Modbus device (slave) id")
    coil: int = Field(ge=0, le=65535, description="coil address (0-based) of the relay")
    watchdog_s: float = Field(gt=0, le=60, description="the module's own output timeout: the coil drops this "
                              "long after the last write (set it on the module; required, it is what makes a hold safe)")

    def hold_window_s(self) -> float:
        return self.watchdog_s


class HikvisionIsapiActuator(_Actuator):
    """A camera's alarm output (``PUT /ISAPI/System/IO/outputs/{output}/trigger``, digest auth).
    The output's delay, set on the camera (``pulse_s``), times the pulse in hardware."""

    kind: Literal["hikvision_isapi"]
    url: str = Field(pattern=r"^https?://[^/@\s]+/?$", description="the camera's base URL, http://192.168.1.64 "
                     "(no credentials in it)")
    output: int = Field(1, ge=1, le=64, description="alarm output number")
    username: str = Field(min_length=1)
    password_env: EnvName
    pulse_s: float = Field(gt=0, le=600, description="the output's delay configured on the camera (its "
                           "hardware-timed pulse)")
    verify_tls: bool = True

    def hold_window_s(self) -> float:
        return self.pulse_s

    def environment_problems(self) -> list[str]:
        return _missing_env("password_env", self.password_env)


class HttpActuator(_Actuator):
    """A generic webhook for IP speakers and elevator IoT boxes. Each hold and renewal says for how
    long (``hold_s`` in the body); a device must let go when that runs out, so it is timed at the
    device. Signed with HMAC-SHA256 of the body when ``secret_env`` is set."""

    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://\S+$")
    method: Literal["POST", "PUT"] = "POST"
    body: dict[str, object] = Field(default_factory=dict, description="extra JSON fields sent with every call")
    secret_env: EnvName | None = Field(None, description="variable holding the HMAC key; the signature goes "
                                       "in X-Sharpeyes-Signature: sha256=<hex>")
    hold_s: float = Field(10.0, gt=0, le=600, description="how long the device keeps its output after a call")
    verify_tls: bool = True

    def hold_window_s(self) -> float:
        return self.hold_s

    def environment_problems(self) -> list[str]:
        return _missing_env("secret_env", self.secret_env)


class AudioActuator(_Actuator):
    """A voice warning played on the edge box's own output, again and again while the hazard lasts."""

    kind: Literal["audio"]
    file: str = Field(min_length=1, description="the voice file, e.g. /etc/sharpeyes/ebike-warning.wav")
    player: list[str] = Field(default_factory=lambda: ["aplay", "-q"], min_length=1,
                              description="the command that plays a file (the file is appended)")
    repeat_s: float = Field(6.0, gt=0, le=120, description="play again this often while held")

    def hold_window_s(self) -> float:
        return self.repeat_s * 3  # a renewal plays the file again when repeat_s has passed

    def rearm_s(self) -> float:
        return self.repeat_s

    def environment_problems(self) -> list[str]:
        if not Path(self.file).is_file():
            return [f"file: {self.file} is not a file on this edge (fix: copy the voice file there or change file)"]
        return []


ActuatorConfig = Annotated[
    ModbusTcpActuator | HikvisionIsapiActuator | HttpActuator | AudioActuator,
    Field(discriminator="kind"),
]

