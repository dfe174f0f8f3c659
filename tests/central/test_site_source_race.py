"""Several central processes started at once on an empty PostgreSQL inventory (ingest workers
and API processes of a city deployment): one takes the site file, the others use its versions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from central.fleet import inventory
from central.fleet.site_source import SiteSource
from central.store.config_tables import EdgeConfigChange
from central.store.db import make_engine, make_session_factory
from central.store.migrate import upgrade
from tests.central.factories import workflow_site
from tests.support import fresh_postgres_database


def test_processes_starting_together_take_the_site_file_once_and_all_start(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    site = workflow_site()
    real_is_empty = inventory.is_empty
    both_saw_it_empty = threading.Barrier(2, timeout=30)
    waited: set[str] = set()

    def is_empty_then_wait(session, name):  # type: ignore[no-untyped-def]
        # Both processes look before either writes: the race of two workers started together.
        empty = real_is_empty(session, name)
        me = threading.current_thread().name
        if me.startswith("central-") and me not in waited:
            waited.add(me)
            try:
                both_saw_it_empty.wait()
            except threading.BrokenBarrierError:
                pass
        return empty

    monkeypatch.setattr(inventory, "is_empty", is_empty_then_wait)
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        started: dict[str, object] = {}
        failures: list[BaseException] = []

        def start(name: str) -> None:
            try:
                with sessions() as session:
                    started[name] = SiteSource(site, sessions).start(session, datetime.now(UTC))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=start, args=(f"central-{n}",), name=f"central-{n}") for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        with sessions() as session:
            versions = session.scalar(select(func.count()).select_from(EdgeConfigChange))
        engine.dispose()
    assert not failures, failures
    assert sorted(started) == ["central-1", "central-2"]
    assert versions == len(site.edges)  # the file was taken once
    for config in started.values():
        assert [e.id for e in config.edges] == [e.id for e in site.edges]  # type: ignore[attr-defined]
