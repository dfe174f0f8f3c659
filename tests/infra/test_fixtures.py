"""The shared fixtures other tests build on: databases and shared data paths."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.support import PostgresUnavailable, fresh_postgres_database, postgres_database_exists


def test_database_url_is_an_empty_writable_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
            conn.execute(sa.text("INSERT INTO probe (id, note) VALUES (1, '消防通道')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT note FROM probe")).scalar_one() == "消防通道"
    finally:
        engine.dispose()


def test_postgres_database_is_dropped_even_with_connections_left_open() -> None:
    with fresh_postgres_database() as url:
        name = url.rsplit("/", 1)[1]
        assert url.startswith("postgresql+psycopg://")
        assert postgres_database_exists(name)
        # Code under test that forgets to close its pool must not make teardown hang or fail.
        leaked = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        leaked.execute("SELECT 1")
    assert not postgres_database_exists(name)
    leaked.close()


def test_unreachable_postgres_says_how_to_fix_it() -> None:
    with pytest.raises(PostgresUnavailable, match="make test"):
        with fresh_postgres_database("postgresql://postgres@127.0.0.1:1/postgres"):
            pass


def test_shared_data_paths(shared_media: Path, shared_models: Path) -> None:
    assert (shared_media / "street_parked_cars_720p.mp4").is_file()
    assert (shared_models / "yolov8n.onnx").is_file()
