"""The devices an actuator drives. Each driver turns an output on for at most ``hold_s`` (the
device's own timing keeps it from staying on) or lets go, and raises ActuatorError with a
readable cause when the device does not acknowledge. Calls block for at most the actuator's
``timeout_s``; they run on the actuator's own thread (edge/actuators/runner.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Protocol

from broker.actuatorconfig import (
    ActuatorConfig,
    AudioActuator,
    HikvisionIsapiActuator,
    HttpActuator,
    ModbusTcpActuator,
)
from broker.redact import redact


class ActuatorError(Exception):
    """The device did not do what was asked; the message is for the operator."""


class Driver(Protocol):
    def arm(self, hold_s: float, context: dict[str, str]) -> None: ...

    def release(self, context: dict[str, str]) -> None: ...

    def close(self) -> None: ...


class ModbusCoilDriver:
    """A relay module's coil (Modbus TCP, function 05). The connection is kept and re-opened when
    it drops; the module's watchdog, not this driver, times the hold."""

    def __init__(self, config: ModbusTcpActuator) -> None:
        from pymodbus.client import ModbusTcpClient

        self.config = config
        # retries=0: one attempt per call; the runner's backoff decides when to try again.
        self._client = ModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s, retries=0,
                                       reconnect_delay=0)

    def _write(self, on: bool) -> None:
        from pymodbus.exceptions import ModbusException

        where = f"{self.config.host}:{self.config.port} unit {self.config.unit} coil {self.config.coil}"
        try:
            if not self._client.connected and not self._client.connect():
                raise ActuatorError(f"relay module {where} unreachable")
            reply = self._client.write_coil(self.config.coil, on, device_id=self.config.unit)
        except ModbusException as exc:
            self._client.close()
            raise ActuatorError(f"relay module {where}: {exc}") from None
        if reply.isError():
            raise ActuatorError(f"relay module {where} refused the write: {reply}")

    def arm(self, hold_s: float, context: dict[str, str]) -> None:
        self._write(True)

    def release(self, context: dict[str, str]) -> None:
        self._write(False)

    def close(self) -> None:
        self._client.close()


def _http_error(what: str, exc: Exception) -> ActuatorError:
    return ActuatorError(redact(f"{what}: {type(exc).__name__}: {exc}"))


class IsapiOutputDriver:
    """A Hikvision camera's alarm output. ``high`` starts the output's configured delay (the
    hardware-timed pulse); ``low`` ends it early."""

    def __init__(self, config: HikvisionIsapiActuator) -> None:
        import httpx

        self.config = config
        password = os.environ.get(config.password_env, "")
        self._client = httpx.Client(auth=httpx.DigestAuth(config.username, password), timeout=config.timeout_s,
                                    verify=config.verify_tls)
        self._url = f"{config.url.rstrip('/')}/ISAPI/System/IO/outputs/{config.output}/trigger"

    def _trigger(self, state: str) -> None:
        import httpx

        body = f'<?xml version="1.0" encoding="UTF-8"?><IOPortData><outputState>{state}</outputState></IOPortData>'
        try:
            reply = self._client.put(self._url, content=body, headers={"Content-Type": "application/xml"})
        except httpx.HTTPError as exc:
            raise _http_error(f"camera output {self._url}", exc) from None
        if reply.status_code != 200:
            raise ActuatorError(f"camera output {self._url} answered {reply.status_code}: {reply.text[:200]}")

    def arm(self, hold_s: float, context: dict[str, str]) -> None:
        self._trigger("high")

    def release(self, context: dict[str, str]) -> None:
        self._trigger("low")

    def close(self) -> None:
        self._client.close()


def signature(secret: str, body: bytes) -> str:
    """The X-Sharpeyes-Signature header's value for BODY (the receiver recomputes it)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpCallDriver:
    """A webhook to an IP speaker or an elevator IoT box: ``{"action": "hold", "hold_s": ...}`` or
    ``{"action": "release"}`` with the hazard's camera, zone and incident key, the configured
    ``body`` fields, and an HMAC signature when a secret is configured. Any 2xx is an acknowledgement."""

    def __init__(self, config: HttpActuator) -> None:
        import httpx

        self.config = config
        self._secret = os.environ.get(config.secret_env) if config.secret_env else None
        self._client = httpx.Client(timeout=config.timeout_s, verify=config.verify_tls)

    def _call(self, payload: dict[str, object]) -> None:
        import httpx

        body = json.dumps({**self.config.body, **payload}, ensure_ascii=False, sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["X-Sharpeyes-Signature"] = signature(self._secret, body)
        try:
            reply = self._client.request(self.config.method, self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _http_error(f"{self.config.method} {self.config.url}", exc) from None
        if not reply.is_success:
            raise ActuatorError(redact(f"{self.config.method} {self.config.url} answered {reply.status_code}"))

    def arm(self, hold_s: float, context: dict[str, str]) -> None:
        self._call({"action": "hold", "hold_s": hold_s, "actuator": self.config.id,
                    "at": datetime.now(UTC).isoformat(), **context})

    def release(self, context: dict[str, str]) -> None:
        self._call({"action": "release", "actuator": self.config.id, "at": datetime.now(UTC).isoformat(), **context})

    def close(self) -> None:
        self._client.close()


class VoicePlayerDriver:
    """Plays the voice file on the edge box's own output; a renewal plays it again once the last
    play has finished, a release stops it."""

    def __init__(self, config: AudioActuator) -> None:
        self.config = config
        self._player: subprocess.Popen[bytes] | None = None

    def arm(self, hold_s: float, context: dict[str, str]) -> None:
        if self._player is not None and self._player.poll() is None:
            return  # still playing the last warning
        argv = [*self.config.player, self.config.file]
        try:
            self._player = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE)
        except OSError as exc:
            raise ActuatorError(f"cannot run {argv[0]!r} to play {self.config.file}: {exc}") from None
        try:
            code = self._player.wait(0.2)  # a player that fails at once (no device, bad file) says so now
        except subprocess.TimeoutExpired:
            return
        if code != 0:
            err = (self._player.stderr.read() if self._player.stderr else b"").decode(errors="replace").strip()
            raise ActuatorError(f"{argv[0]} exited {code} playing {self.config.file}: {err[:200]}")

    def release(self, context: dict[str, str]) -> None:
        if self._player is not None and self._player.poll() is None:
            self._player.terminate()
            try:
                self._player.wait(2)
            except subprocess.TimeoutExpired:
                self._player.kill()
        self._player = None

    def close(self) -> None:
        self.release({})


def driver_for(config: ActuatorConfig) -> Driver:
    match config:
        case ModbusTcpActuator():
            return ModbusCoilDriver(config)
        case HikvisionIsapiActuator():
            return IsapiOutputDriver(config)
        case HttpActuator():
            return HttpCallDriver(config)
        case AudioActuator():
            return VoicePlayerDriver(config)
    raise ValueError(f"no driver for actuator kind {config.kind!r}")
