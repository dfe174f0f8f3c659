from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from broker.netutil import PortTimeout, free_port, port_accepts, wait_for_http, wait_for_port


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_port_returns_once_something_listens_later() -> None:
    port = free_port()
    server = socket.socket()

    def listen_later() -> None:
        time.sleep(0.3)
        server.bind(("127.0.0.1", port))
        server.listen()

    threading.Thread(target=listen_later).start()
    try:
        wait_for_port("127.0.0.1", port, timeout=5)
        assert port_accepts("127.0.0.1", port)
    finally:
        server.close()


def test_wait_for_port_names_the_address_on_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(PortTimeout, match=f"broker did not accept TCP connections on 127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.5, what="broker")
    assert time.monotonic() - started < 3


def test_wait_for_port_gives_up_when_the_process_died() -> None:
    with pytest.raises(RuntimeError, match="exited before"):
        wait_for_port("127.0.0.1", free_port(), timeout=30, still_alive=lambda: False, what="central")


class _Handler(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).calls += 1
        # Unhealthy for the first two probes, as a service still migrating its database would be.
        self.send_response(503 if type(self).calls <= 2 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_wait_for_http_retries_until_healthy_and_reports_last_error() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/healthz"
        wait_for_http(url, timeout=10)
        assert _Handler.calls >= 3
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(PortTimeout, match="last error"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/healthz", timeout=0.5)
