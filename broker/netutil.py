"""Small network helpers shared by the demo, the test fixtures and the process wrappers."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable


class PortTimeout(TimeoutError):
    """A service did not start accepting connections in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that nothing listens on right now.

    The kernel picks it, so two callers rarely collide; there is still a window between this call
    and the caller's bind, which is why process wrappers retry on a fresh port when a bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    still_alive: Callable[[], bool] | None = None,
    what: str = "service",
) -> None:
    """Block until host:port accepts TCP connections.

    `still_alive` lets a caller that started the server stop waiting as soon as the server process
    died, instead of sitting out the whole timeout. Raises PortTimeout (a TimeoutError) naming the
    address and how long it waited, or RuntimeError when `still_alive` said the process is gone.
    """
    deadline = time.monotonic() + timeout
    while True:
        if port_accepts(host, port):
            return
        if still_alive is not None and not still_alive():
            raise RuntimeError(f"{what} exited before it accepted connections on {host}:{port}")
        if time.monotonic() >= deadline:
            raise PortTimeout(f"{what} did not accept TCP connections on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.05)


def wait_for_http(
    url: str,
    timeout: float,
    *,
    still_alive: Callable[[], bool] | None = None,
    what: str = "service",
) -> None:
    """Block until GET `url` answers with a 2xx status.

    Connection refusals and 5xx answers during start-up are expected and retried; the last error is
    quoted in the timeout message so the operator sees why it never became healthy.
    """
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if still_alive is not None and not still_alive():
            raise RuntimeError(f"{what} exited before {url} answered (last error: {last_error})")
        if time.monotonic() >= deadline:
            raise PortTimeout(f"{what} did not answer GET {url} within {timeout:.0f} s (last error: {last_error})")
        time.sleep(0.2)
