"""A child process whose output is echoed line by line with a name prefix and kept as a tail."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ManagedProcess:
    """One child process owned by a Python object: its pid, whether it runs, and how it ends.

    Subclasses start ``self._proc``; ``stop`` asks politely (SIGTERM, so Mosquitto saves its
    persistence file) and kills after ``timeout``; ``kill`` is a crash on purpose."""

    _proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _before_terminate(self, proc: subprocess.Popen) -> None:
        """Hook: e.g. resume a paused process, which cannot act on SIGTERM while stopped."""

    def _on_stop_timeout(self, proc: subprocess.Popen, timeout: float) -> None:
        proc.kill()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._before_terminate(proc)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._on_stop_timeout(proc, timeout)
                proc.wait()
        self._proc = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, losing whatever was not yet saved."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None


class Child(ManagedProcess):
    """Run `argv` in its own session (so a terminal Ctrl-C reaches only the parent, which then
    stops children in order) and pump its combined stdout/stderr through `echo`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        echo: Callable[[str], None] | None = None,
        tail_lines: int = 200,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self._echo = echo if echo is not None else _print_line
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> Child:
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._read_output, name=f"{self.name}-output", daemon=True)
        self._pump.start()
        return self

    def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip("\n")
            with self._lock:
                self._tail.append(line)
            self._echo(f"[{self.name}] {line}")

    def tail(self, lines: int = 40) -> list[str]:
        with self._lock:
            return list(self._tail)[-lines:]

    def _on_stop_timeout(self, proc: subprocess.Popen, timeout: float) -> None:
        self._echo(f"[{self.name}] did not stop within {timeout:.0f} s; killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its whole session: the child's own children too
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        proc = self._proc
        status = super().stop(timeout)
        self._proc = proc  # keep it: `returncode` and `tail` stay readable after the stop
        if self._pump is not None:
            self._pump.join(timeout=2)
        return status

def _print_line(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
