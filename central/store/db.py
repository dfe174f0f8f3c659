"""Database engine and sessions: SQLite (embedded default) or PostgreSQL, same code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

VAR_DIR_ENV = "SHARPEYES_VAR_DIR"


def var_dir() -> Path:
    """Where central keeps its files (database, evidence, JWT secret) unless told otherwise."""
    return Path(os.environ.get(VAR_DIR_ENV, "var"))


def default_database_url() -> str:
    return f"sqlite:///{var_dir() / 'central.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:  # DBAPI objects: untyped by SQLAlchemy
    # WAL lets the API read while the ingest thread writes; the busy timeout makes a writer wait
    # for another instead of failing at once; SQLite leaves foreign keys off unless asked.
    # synchronous=FULL: an event acknowledged to the broker must survive a power loss, not only a
    # crash of the process; with one transaction per burst this costs ~8 % (docs/benchmarks.md).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: the ingest publishes notifications built from them.
    return sessionmaker(engine, expire_on_commit=False)
