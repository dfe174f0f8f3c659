"""A Modbus TCP relay module on loopback, for the demo, the tests and the actuation benchmark.

It is pymodbus's own server (the maintained simulator the product's driver talks to in the field
is a real module) with a bank of coils, plus the one feature of a real module that makes a door
hold safe: the output watchdog. A coil switched on drops by itself ``watchdog_s`` after the last
write that set it (modules call it "communication timeout", "flash" or "pulse" time), so an edge
that is killed mid-hold cannot leave the door held. ``changes`` records every switch with its
cause (a write, or the watchdog), which the tests read.

Run it alone with ``sharpeyes relay-sim --port 1502``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

COIL_WRITES = (5, 15)  # write single coil, write multiple coils
COIL_FUNCTIONS = (1, 5, 15)


@dataclass(frozen=True, slots=True)
class CoilChange:
    monotonic: float
    coil: int
    on: bool
    cause: str  # "write" or "watchdog"


class RelayModuleSimulator:
    def __init__(self, *, coils: int = 8, watchdog_s: float | None = 5.0, host: str = "127.0.0.1",
                 port: int | None = None, on_change: Callable[[CoilChange], None] | None = None) -> None:
        from broker.netutil import free_port

        self.coils, self.watchdog_s, self.host = coils, watchdog_s, host
        self.port = port or free_port()
        self._on: list[bool] = [False] * coils
        self._set_at: list[float] = [0.0] * coils
        self.changes: list[CoilChange] = []
        self.writes = 0
        self._on_change = on_change
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None  # pymodbus's ModbusTcpServer, once serving
        self._thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- the module's state ------------------------------------------------------------------------

    def _switch(self, coil: int, on: bool, cause: str, when: float) -> None:
        if self._on[coil] != on:
            change = CoilChange(when, coil, on, cause)
            self.changes.append(change)
            if self._on_change is not None:
                self._on_change(change)
        self._on[coil] = on

    def _expire(self, now: float) -> None:
        if self.watchdog_s is None:
            return
        for coil in range(self.coils):
            if self._on[coil] and now - self._set_at[coil] >= self.watchdog_s:
                self._switch(coil, False, "watchdog", self._set_at[coil] + self.watchdog_s)

    def coil(self, coil: int) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return self._on[coil]

    def switched_on(self, coil: int) -> list[CoilChange]:
        with self._lock:
            return [c for c in self.changes if c.coil == coil and c.on]

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None) -> None:
        """pymodbus calls this on every access, with the coil block's registers (16 coils each)."""
        if function_code not in COIL_FUNCTIONS:
            return None
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if values is not None and function_code in COIL_WRITES:
                self.writes += 1
                for offset, value in enumerate(values):
                    coil = address + offset
                    if 0 <= coil < self.coils:
                        if value:
                            self._set_at[coil] = now
                        self._switch(coil, bool(value), "write", now)
            for coil in range(self.coils):
                index, bit = divmod(coil - start_address, 16)
                if 0 <= index < len(registers):
                    registers[index] = registers[index] | (1 << bit) if self._on[coil] else registers[index] & ~(1 << bit)
        return None

    # -- the server ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> RelayModuleSimulator:
        from broker.netutil import wait_for_port

        self._thread = threading.Thread(target=self._serve, name="relay-sim", daemon=True)
        self._thread.start()
        wait_for_port(self.host, self.port, timeout=timeout)
        # The watchdog acts on its own time too (a module does), so that on_change reports a drop
        # when it happens, not at the next read.
        self._watchdog_thread = threading.Thread(target=self._watch, name="relay-sim-watchdog", daemon=True)
        self._watchdog_thread.start()
        return self

    def _watch(self) -> None:
        while not self._stopping.wait(0.05):
            with self._lock:
                self._expire(time.monotonic())

    def _serve(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def bits() -> list[SimData]:
            return [SimData(0, count=self.coils, values=False, datatype=DataType.BITS)]

        def regs() -> list[SimData]:
            return [SimData(0, count=self.coils, values=0, datatype=DataType.REGISTERS)]

        device = SimDevice(id=0, simdata=(bits(), bits(), regs(), regs()), action=self._action)
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            server = ModbusTcpServer(device, address=(self.host, self.port))
            self._server = server
            await server.serve_forever()

        try:
            self._loop.run_until_complete(serve())
        finally:
            self._loop.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._loop is not None and self._server is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            try:
                future.result(5)
            except Exception:  # noqa: BLE001 - stopping a test fixture
                log.debug("relay simulator shutdown", exc_info=True)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> RelayModuleSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_relay_sim(port: int, coils: int, watchdog_s: float | None, host: str = "127.0.0.1") -> None:
    """Serve until interrupted, printing each switch (``sharpeyes relay-sim``)."""

    def say(change: CoilChange) -> None:
        print(f"relay-sim: coil {change.coil} {'ON' if change.on else 'off'} ({change.cause})", flush=True)

    sim = RelayModuleSimulator(coils=coils, watchdog_s=watchdog_s, host=host, port=port, on_change=say).start()
    timing = f"watchdog {watchdog_s:g} s" if watchdog_s else "no watchdog"
    print(f"relay-sim: Modbus TCP relay module on {host}:{sim.port}, {coils} coils, {timing}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
