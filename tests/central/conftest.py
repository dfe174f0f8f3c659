"""Central fixtures on top of the shared ones: a migrated store on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from central.db import make_engine, make_session_factory
from central.evidence_store import EvidenceStore
from central.ingest import IngestService
from central.migrate import upgrade
from central.routing import GridRouter
from tests.central.factories import site_config


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    evidence: EvidenceStore
    router: GridRouter

    def handle(self, topic: str, payload: bytes):  # type: ignore[no-untyped-def]
        with self.sessions() as session:
            return IngestService(session, self.evidence, self.router).handle(topic, payload)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine, make_session_factory(engine), EvidenceStore(tmp_path / "evidence"), GridRouter(site_config()))
    engine.dispose()
