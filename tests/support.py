"""Helpers for tests that are not fixtures: project paths, polling, RTSP capture, PostgreSQL admin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
DEFAULT_PG_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, *, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy and return that; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def open_rtsp_capture(url: str, *, open_timeout_ms: int = 5000, read_timeout_ms: int = 5000) -> Any:
    """An OpenCV capture over RTSP/TCP with open and read timeouts (FFmpeg otherwise blocks ~30 s)."""
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    import cv2

    return cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_timeout_ms],
    )


def pg_server_url() -> str:
    """The PostgreSQL server tests create their databases on (SHARPEYES_TEST_PG_URL overrides)."""
    return os.environ.get("SHARPEYES_TEST_PG_URL", DEFAULT_PG_SERVER_URL)


def _libpq_url(url: str) -> str:
    """psycopg wants plain `postgresql://`; SQLAlchemy URLs carry a `+driver` suffix."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def _with_database(url: str, database: str, *, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=scheme, path=f"/{database}"))


class PostgresUnavailable(RuntimeError):
    pass


@contextmanager
def fresh_postgres_database(server_url: str | None = None) -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, then drop it.

    Connections left open by the code under test are terminated first, or DROP would wait on them.
    """
    import psycopg
    from psycopg import sql

    server_url = server_url or pg_server_url()
    admin_url = _libpq_url(server_url)
    name = f"sharpeyes_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable at {server_url} ({str(exc).strip()}). Run `make test`, which installs "
            "and starts it (scripts/ensure-system.sh), or point SHARPEYES_TEST_PG_URL at a server where user "
            "postgres may create databases."
        ) from None
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield _with_database(server_url, name, scheme="postgresql+psycopg")
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        admin.close()


def postgres_database_exists(name: str, server_url: str | None = None) -> bool:
    import psycopg

    with psycopg.connect(_libpq_url(server_url or pg_server_url()), autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


SHARPEYES_CLI = [sys.executable, "-m", "sharpeyes"]


def spawn_sharpeyes(args: list[str], log: Path) -> subprocess.Popen:
    """`sharpeyes ARGS` as a real process in the project root, its output appended to `log`."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(SHARPEYES_CLI + args, cwd=PROJECT_ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_central(args: list[str], log: Path, *, attempts: int = 3, demo: bool = True) -> tuple[subprocess.Popen, str]:
    """`sharpeyes central serve ARGS --port <free>`, waiting for /healthz; returns (process, base URL).

    ``demo``: pass --demo, for the tests' sites with short passwords and a generated token key
    (tests/central/test_security.py starts central without it).

    Another process can take the free port before central binds it: central then exits at once, and
    is started again on a new port."""
    from broker.netutil import free_port, wait_for_http

    for attempt in range(attempts):
        port = free_port()
        central = spawn_sharpeyes(["central", "serve", *args, "--port", str(port), *(["--demo"] if demo else [])], log)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{base}/healthz", timeout=120, still_alive=lambda central=central: central.poll() is None)
            return central, base
        except Exception:
            stop_process(central)
            if central.returncode in (None, 0) or attempt == attempts - 1:
                raise AssertionError(f"central did not start:\n{log.read_text()[-3000:]}") from None
    raise AssertionError("unreachable")


@contextmanager
def central_and_edge(site: Any, edge_id: str, tmp_path: Path, workflow: Any = None) -> Iterator[tuple[Any, Any]]:
    """An in-process central ingesting from the site's broker and a real EdgeNode of EDGE_ID,
    both started; stopped (edge first) on leaving."""
    from central.server import build_central
    from edge.node import EdgeNode

    central = build_central(site, f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "evidence", tmp_path / "var",
                            client_id=f"{site.site}-{uuid.uuid4().hex[:8]}", workflow=workflow)
    central.start_ingest()
    assert central.ingest is not None and central.ingest.wait_connected(10)
    node = EdgeNode(site, edge_id, tmp_path / "edge" / "outbox.db")
    node.start()
    try:
        yield central, node
    finally:
        node.stop()
        central.close()
