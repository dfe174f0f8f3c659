"""Two central processes on one PostgreSQL (the city layout): a change made through one is served by
the other at once, and its config command is published once, though both sweep the commands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.server import Central, build_central
from central.workflow.notify import send_pending_commands
from central.workflow.outgoing import Outgoing
from tests.central.factories import EDGE, WF_PASSWORD, workflow_config, workflow_site
from tests.support import PostgresUnavailable, fresh_postgres_database

LANE = {"id": "lane", "kind": "fire_lane", "polygon": [[0.1, 0.6], [0.9, 0.6], [0.9, 0.7], [0.1, 0.7]], "dwell_s": 30}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    try:
        with fresh_postgres_database() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def _central(url: str, folder: Path) -> Central:
    return build_central(workflow_site(), url, folder / "evidence", folder / "var", ingest=False,
                         workflow=workflow_config())


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        self.sent += [m.topic for m in messages]
        return [True for _ in messages]


def test_a_change_through_one_replica_is_served_by_the_other_and_sent_once(postgres_url: str, tmp_path: Path) -> None:
    one, two = _central(postgres_url, tmp_path / "one"), _central(postgres_url, tmp_path / "two")
    try:
        with TestClient(one.app) as a, TestClient(two.app) as b:
            tokens = [c.post("/api/v1/auth/token", data={"username": "admin", "password": WF_PASSWORD}).json()
                      for c in (a, b)]
            ha, hb = ({"Authorization": f"Bearer {t['access_token']}"} for t in tokens)
            added = a.post("/api/v1/cameras", headers=ha, json={"edge": EDGE, "camera": {
                "id": "lobby", "url": "rtsp://10.0.0.5/ch1", "grid_cell": "g1", "zones": [LANE]}})
            assert added.status_code == 202, added.text
            # The other replica serves it on its very next request.
            assert b.get("/api/v1/cameras", headers=hb, params={"q": "lobby"}).json()["total"] == 1
            cams = {c["id"] for s in b.get("/api/v1/sites", headers=hb).json() for e in s["edges"] for c in e["cameras"]}
            assert "lobby" in cams and two.ctx.site is not None and two.ctx.site.camera("lobby") is not None
            # A change through the second builds on the first's (not on its own older copy).
            zoned = b.put("/api/v1/cameras/street-north/zones", headers=hb, json={"zones": [LANE]})
            assert zoned.status_code == 202, zoned.text
            versions = a.get(f"/api/v1/edges/{EDGE}/config/versions", headers=ha).json()["versions"]
            assert [v["action"] for v in versions] == ["import", "camera_add", "zones"]
            stored = a.get(f"/api/v1/edges/{EDGE}/config/versions/3", headers=ha).json()["config"]
            assert {c["id"] for c in stored["cameras"]} >= {"lobby", "street-north"}
            # Both replicas sweep the unpublished commands: each goes out once.
            first, second = Recorder(), Recorder()
            with one.ctx.sessions() as s1, two.ctx.sessions() as s2:
                sent = send_pending_commands(s1, first) + send_pending_commands(s2, second)
            assert sent == 2 and len(first.sent) + len(second.sent) == 2
    finally:
        one.close()
        two.close()
