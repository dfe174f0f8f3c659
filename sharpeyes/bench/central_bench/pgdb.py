"""A fresh PostgreSQL database per measurement: created on the machine's server, dropped after.

The server is ``--database-url`` if given, else ``$SHARPEYES_BENCH_PG_URL``, else
``$SHARPEYES_TEST_PG_URL`` (the test suite's server), else ``postgresql://postgres@127.0.0.1:5432/postgres``
(user ``postgres`` with trust authentication, as scripts/ensure-system.sh sets it up). The URL
names the server and a database to connect to for ``CREATE DATABASE``; each measurement gets a
database of its own, ``sharpeyes_bench_<random>``, with the SQLAlchemy scheme
``postgresql+psycopg://``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sharpeyes.bench.central_bench.options import BenchError

DEFAULT_PG_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_ENV = ("SHARPEYES_BENCH_PG_URL", "SHARPEYES_TEST_PG_URL")


def pg_server_url(explicit: str | None = None) -> str:
    """The server measurements create their databases on."""
    if explicit:
        return explicit
    for name in SERVER_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return DEFAULT_PG_SERVER_URL


def libpq_url(url: str) -> str:
    """psycopg wants plain ``postgresql://``; SQLAlchemy URLs carry a ``+driver`` suffix."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def with_database(url: str, database: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of ``database`` on the server of ``url``."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+psycopg", path=f"/{database}"))


def admin_connection(server_url: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL is not reachable at {server_url} ({str(exc).strip()}); start it "
                         "(scripts/ensure-system.sh) or name a server with --database-url") from None


@contextmanager
def fresh_database(server_url: str) -> Iterator[tuple[str, Any, str]]:
    """Create ``sharpeyes_bench_<random>``; yield (its SQLAlchemy URL, an autocommit admin connection,
    its name); then end every connection still open on it and drop it."""
    from psycopg import sql

    name = f"sharpeyes_bench_{uuid.uuid4().hex[:12]}"
    admin = admin_connection(server_url)
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(server_url, name), admin, name
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        admin.close()


def backend_pids(admin: Any, name: str) -> list[int]:
    """Server processes serving database ``name`` (their CPU is PostgreSQL's share of a measurement;
    readable in /proc only when the server runs on this machine)."""
    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                         (name,)).fetchall()
    return [int(r[0]) for r in rows]
