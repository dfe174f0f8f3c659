"""Central fixtures on top of the shared ones: a migrated store on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from central.evidence.store import EvidenceStore
from central.ingest.service import IngestService
from central.store.db import make_engine, make_session_factory
from central.store.migrate import upgrade
from central.workflow.routing import GridRouter
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


@pytest.fixture(autouse=True, scope="session")
def _fast_bcrypt() -> Iterator[None]:
    """Cheap bcrypt rounds in tests: logins are exercised, their cost is not what is tested."""
    import bcrypt

    import central.auth.users as users

    original = users.hash_password
    users.hash_password = lambda password: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    yield
    users.hash_password = original


@dataclass
class Workflow:
    """A central with the workflow site and a hand-moved clock, driven through its HTTP API."""

    central: object
    client: object
    clock: object
    _tokens: dict[str, dict[str, str]]

    def login(self, username: str) -> dict[str, str]:
        from tests.central.factories import WF_PASSWORD

        if username not in self._tokens:
            res = self.client.post("/api/v1/auth/token", data={"username": username, "password": WF_PASSWORD})
            assert res.status_code == 200, res.text
            self._tokens[username] = {"Authorization": f"Bearer {res.json()['access_token']}"}
        return self._tokens[username]

    def ingest(self, topic: str, payload: bytes):  # type: ignore[no-untyped-def]
        from central.workflow.routing import GridRouter
        from tests.central.factories import workflow_site

        c = self.central
        with c.ctx.sessions() as session:
            outcome = IngestService(session, c.ctx.evidence, GridRouter(workflow_site()), c.workflow).handle(
                topic, payload, self.clock.now())
        if outcome.incidents_changed:
            c.ctx.feed.bump()  # as the MQTT ingest does after its commit (live stream, statistics cache)
        return outcome

    def act(self, username: str, incident_id: int, action: str, **body: object):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1/incidents/{incident_id}/actions/{action}", json=body,
                                headers=self.login(username))

    def get(self, username: str, path: str, **params: object):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=self.login(username), params=params)


def make_workflow(database_url: str, tmp_path: Path, **config_overrides: object) -> Iterator[Workflow]:
    from fastapi.testclient import TestClient

    from central.server import build_central
    from central.store.clock import ManualClock
    from tests.central.factories import T0, workflow_config, workflow_site

    clock = ManualClock(T0)
    built = build_central(workflow_site(), database_url, tmp_path / "evidence", tmp_path / "var", ingest=False,
                          workflow=workflow_config(**config_overrides), clock=clock)
    with TestClient(built.app) as client:
        yield Workflow(built, client, clock, {})
    built.close()


@pytest.fixture
def wf(database_url: str, tmp_path: Path) -> Iterator[Workflow]:
    yield from make_workflow(database_url, tmp_path)
