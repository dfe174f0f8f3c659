"""Store set-up: migrations, SQLite settings, users from the configuration, grid routing."""

from __future__ import annotations

from sqlalchemy import select

from broker.siteconfig import parse_site_config
from central.auth.users import authenticate, sync_users
from central.store.db import make_engine
from central.store.migrate import upgrade
from central.store.tables import User
from central.workflow.routing import GridRouter, Route
from tests.central.conftest import Store
from tests.central.factories import site_config


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'central.db'}")
    upgrade(engine)
    upgrade(engine)  # running it again at the next start-up is a no-op
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    engine.dispose()


def test_users_are_hashed_updated_and_disabled_when_removed(store: Store) -> None:
    config = site_config()
    with store.sessions() as session:
        assert sync_users(session, config.users) == 4
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.password_hash.startswith("$2") and "admin-pw" not in admin.password_hash
        assert authenticate(session, "admin", "admin-pw") is not None
        assert authenticate(session, "admin", "wrong") is None

    changed = config.model_copy(
        update={"users": [u.model_copy(update={"password": "new-pw"}) for u in config.users if u.username != "zhao"]}
    )
    with store.sessions() as session:
        sync_users(session, changed.users)
        assert authenticate(session, "admin", "admin-pw") is None
        assert authenticate(session, "admin", "new-pw") is not None
        assert authenticate(session, "zhao", "zhao-pw") is None  # removed from the config


def test_routing_walks_up_to_the_nearest_cell_with_a_worker() -> None:
    router = GridRouter(site_config())
    assert router.route("demo", "street-north") == Route("g1", "wang-fang")
    assert router.route("demo", "elevator-1") == Route("g2", "zhao-chief")
    assert router.route("demo", "lobby") == Route(None, None)
    assert router.route("demo", "unknown-cam") == Route(None, None)
    assert router.route("other-site", "street-north") == Route(None, None)
    assert GridRouter(None).route("demo", "street-north") == Route(None, None)


def test_routing_survives_a_parent_cycle_in_the_grid() -> None:
    site = parse_site_config(
        {
            "site": "s",
            "edges": [{"id": "e", "cameras": [{"id": "c", "url": "rtsp://x/y", "grid_cell": "a"}]}],
            "grid": [{"code": "a", "name": "A", "parent": "b"}, {"code": "b", "name": "B", "parent": "a"}],
        }
    )
    assert GridRouter(site).route("s", "c") == Route("a", None)


def test_a_password_bcrypt_cannot_take_skips_that_user_only(store: Store) -> None:
    config = site_config()
    long_pw = [u.model_copy(update={"password": "x" * 73}) if u.username == "monitor" else u for u in config.users]
    with store.sessions() as session:
        assert sync_users(session, long_pw) == 3
        assert authenticate(session, "monitor", "x" * 73) is None
        assert authenticate(session, "admin", "admin-pw") is not None
