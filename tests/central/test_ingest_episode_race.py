"""One episode, its events stored by two workers at the same moment (PostgreSQL).

A shared subscription hands an edge's start, update and end to different central workers. Each
batch reads the incident, folds its event in and writes the fold back; two batches that read the
incident before either committed used to write over each other (the later commit won: an ``end``
lost, ``event_count`` short). The fold is now written only where the row is as read, so the later
batch folds again on the row the other committed (central/ingest/apply.py, FoldConflict).

The interleaving is forced: both batches read the store, then both go on (a barrier in
``read_view``), which is what two workers do when the events arrive together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from broker.payloads import HazardEvent, Phase
from broker.topics import event_topic
from central.evidence.store import EvidenceStore
from central.ingest import service
from central.ingest.service import IngestService
from central.store.db import make_engine, make_session_factory
from central.store.migrate import upgrade
from central.store.tables import DeadLetter, Event, Incident, IncidentAlias
from central.workflow.routing import GridRouter
from central.workflow.vocabulary import Condition
from tests.central.factories import EDGE, SITE, T0, event, site_config, wire
from tests.support import PostgresUnavailable, fresh_postgres_database

TOPIC = event_topic(SITE, EDGE)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    try:
        with fresh_postgres_database() as url:
            engine = make_engine(url)
            upgrade(engine)
            try:
                yield make_session_factory(engine)
            finally:
                engine.dispose()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def store(sessions: sessionmaker[Session], tmp_path: Path, *events: HazardEvent) -> None:
    with sessions() as session:
        IngestService(session, EvidenceStore(tmp_path / "evidence"), GridRouter(site_config())).handle_batch(
            [(TOPIC, wire(e), T0) for e in events])


def together(sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             *batches: list[HazardEvent]) -> None:
    """Each batch in a thread of its own, as a worker each; every batch's first read of the store is
    done before any of them writes."""
    barrier = threading.Barrier(len(batches))
    first = threading.local()
    real = service.read_view

    def read_then_wait(*args: Any, **kwargs: Any) -> Any:
        view = real(*args, **kwargs)
        if not getattr(first, "done", False):
            first.done = True
            barrier.wait(30)
        return view

    monkeypatch.setattr(service, "read_view", read_then_wait)
    errors: list[BaseException] = []

    def work(batch: list[HazardEvent]) -> None:
        try:
            store(sessions, tmp_path, *batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


def incident(sessions: sessionmaker[Session], key: str) -> Incident:
    with sessions() as session:
        [row] = session.scalars(select(Incident).where(Incident.incident_key == key)).all()
        session.expunge(row)
        return row


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int, int]:
    with sessions() as session:
        return (session.scalar(select(func.count()).select_from(Incident)) or 0,
                session.scalar(select(func.count()).select_from(Event)) or 0,
                session.scalar(select(func.count()).select_from(DeadLetter)) or 0,
                session.scalar(select(func.count()).select_from(IncidentAlias)) or 0)


@pytest.mark.timeout(120)
def test_update_and_end_stored_at_once_by_two_workers_both_count(sessions: sessionmaker[Session], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store(sessions, tmp_path, event("race-1", Phase.START, seq=1))
    end = event("race-1", Phase.END, seq=3, observed_after_s=20)
    together(sessions, tmp_path, monkeypatch, [event("race-1", Phase.UPDATE, seq=2, observed_after_s=10, score=0.95)],
             [end])
    row = incident(sessions, "race-1")
    assert row.event_count == 3
    assert row.condition == Condition.CLEARED and row.ended_at == end.observed_at
    assert row.last_observed_at == end.observed_at and row.max_score == pytest.approx(0.95)
    assert counts(sessions) == (1, 3, 0, 0)


@pytest.mark.timeout(120)
def test_start_and_end_arriving_together_make_one_incident(sessions: sessionmaker[Session], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither worker finds the incident: both create it; the second's insert collides on the key and
    # its batch is stored again, folding into the first's.
    start = event("race-2", Phase.START, seq=1, started_at=T0)
    end = event("race-2", Phase.END, seq=3, started_at=T0, observed_after_s=30)
    together(sessions, tmp_path, monkeypatch, [start], [end])
    row = incident(sessions, "race-2")
    assert row.event_count == 2
    assert row.condition == Condition.CLEARED and row.ended_at == end.observed_at
    assert row.started_at == T0 and row.last_observed_at == T0 + timedelta(seconds=30)
    assert counts(sessions) == (1, 2, 0, 0)


@pytest.mark.timeout(120)
def test_three_workers_with_one_event_each_of_a_new_episode(sessions: sessionmaker[Session], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    start = event("race-3", Phase.START, seq=1)
    update = event("race-3", Phase.UPDATE, seq=2, observed_after_s=10, score=0.9)
    end = event("race-3", Phase.END, seq=3, observed_after_s=20)
    together(sessions, tmp_path, monkeypatch, [end], [update], [start])
    row = incident(sessions, "race-3")
    assert (row.event_count, row.episode_count) == (3, 1)
    assert row.condition == Condition.CLEARED and row.ended_at == end.observed_at
    assert row.max_score == pytest.approx(0.9) and row.started_at == T0
    assert counts(sessions) == (1, 3, 0, 0)


@pytest.mark.timeout(120)
def test_an_end_before_its_start_stays_final(sessions: sessionmaker[Session], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The end's worker was quicker: it filed the incident, cleared; the start and an update that
    # come after (each on another worker, together) fold in without reopening it.
    end = event("race-4", Phase.END, seq=3, observed_after_s=20)
    store(sessions, tmp_path, end)
    together(sessions, tmp_path, monkeypatch, [event("race-4", Phase.START, seq=1)],
             [event("race-4", Phase.UPDATE, seq=2, observed_after_s=10)])
    row = incident(sessions, "race-4")
    assert row.event_count == 3 and row.condition == Condition.CLEARED and row.ended_at == end.observed_at
    assert row.started_at == T0
    assert counts(sessions) == (1, 3, 0, 0)


@pytest.mark.timeout(120)
def test_the_same_event_delivered_to_two_workers_is_stored_once(sessions: sessionmaker[Session], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A slot taken over gets again what its dead holder committed but had not acknowledged.
    store(sessions, tmp_path, event("race-5", Phase.START, seq=1))
    update = event("race-5", Phase.UPDATE, seq=2, observed_after_s=10)
    together(sessions, tmp_path, monkeypatch, [update], [update])
    assert incident(sessions, "race-5").event_count == 2
    assert counts(sessions) == (1, 2, 0, 0)


@pytest.mark.timeout(120)
def test_an_incident_created_between_two_reads_of_one_batch_is_not_a_second_episode(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each query of a batch's read sees what was committed when it ran: the update's worker looks
    the key up (nothing), the start's worker commits the new incident, then the update's worker
    reads the open incidents at the place and finds it. It is the update's own incident, not an
    earlier episode to merge into (that made the incident its own alias, episode_count 2)."""
    from central.ingest import view as view_module

    looked_up, committed = threading.Event(), threading.Event()
    real = view_module._ViewReader.by_keys

    def by_keys_then_wait(self: Any, keys: set[str]) -> None:
        real(self, keys)
        if threading.current_thread().name == "update-worker" and not looked_up.is_set():
            looked_up.set()
            assert committed.wait(30)

    monkeypatch.setattr(view_module._ViewReader, "by_keys", by_keys_then_wait)
    update = event("race-6", Phase.UPDATE, seq=2, observed_after_s=10)
    worker = threading.Thread(target=store, args=(sessions, tmp_path, update), name="update-worker")
    worker.start()
    assert looked_up.wait(30)
    store(sessions, tmp_path, event("race-6", Phase.START, seq=1))
    committed.set()
    worker.join(60)
    row = incident(sessions, "race-6")
    assert (row.event_count, row.episode_count) == (2, 1)
    assert counts(sessions) == (1, 2, 0, 0)
