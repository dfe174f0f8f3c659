"""The processes of a city run: brokers, storage, central's workers and API processes, edges.

Every part is a real program on loopback in the run's folder; each central process runs in a
session of its own, so ``kill`` takes its MQTT receiving process with it, as a crash would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.netutil import free_port
from sharpeyes.chaos.parts import ChaosError, wait_for


@dataclass
class CentralProcess:
    """One `sharpeyes central ...` process: an ingest worker or an API and scheduler process."""

    name: str
    args: list[str]
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0  # the API's port; 0 for a worker
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> CentralProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([sys.executable, "-m", "sharpeyes", "central", *self.args],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                     env={**os.environ, **self.env}, start_new_session=True)
        log.close()
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ChaosError(f"{self.name} exited with {self.proc.returncode}; {self.log_path}:\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9 of the process and its children (the MQTT receiving process), for good."""
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    # -- the API ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        self.check_running()
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as res:
                return bool(json.loads(res.read()).get("ready"))
        except (OSError, ValueError):
            return False

    def login(self, username: str, password: str) -> str:
        data = urllib.parse.urlencode({"username": username, "password": password}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/auth/token", data=data, timeout=10) as res:
            return str(json.loads(res.read())["access_token"])

    def get(self, path: str, token: str) -> tuple[int, dict[str, str], Any]:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as res:
                return res.status, {k.lower(): v for k, v in res.headers.items()}, json.loads(res.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode(errors="replace")


def worker(n: int, folder: Path, common: list[str], slots: int, broker_ports: list[int],
           env: dict[str, str]) -> CentralProcess:
    """An ingest worker on client-id slots, subscribed through every core broker."""
    addresses = [arg for port in broker_ports for arg in ("--broker-address", f"127.0.0.1:{port}")]
    return CentralProcess(f"worker-{n}", ["ingest", *common, "--slots", str(slots), *addresses], folder, env)


def api(n: int, folder: Path, common: list[str], replica_url: str, max_lag_s: float,
        env: dict[str, str]) -> CentralProcess:
    """`central serve --no-ingest`: the API, the deadline scheduler (one holder at a time by lease)
    and reads of statistics through the replica."""
    port = free_port()
    return CentralProcess(f"api-{n}", ["serve", *common, "--no-ingest", "--port", str(port), "--demo",
                                       "--read-database-url", replica_url, "--read-max-lag-s", f"{max_lag_s:g}"],
                          folder, env, port=port)


def wait_ready(processes: list[CentralProcess], timeout: float = 120.0) -> None:
    for process in processes:
        wait_for(process.ready, timeout, f"{process.name} to be ready (/readyz)", interval=0.3)
