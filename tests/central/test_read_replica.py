"""Statistics and exports read through a real PostgreSQL streaming replica (``central serve
--read-database-url``), falling back to the primary when the replica is down or too far behind, and
saying so in every such response; plus the pure decision it rests on (central/store/read_replica.py).

The cluster is real: a primary and a hot standby started by sharpeyes/services/postgres_cluster.py
for this module; each test gets a database of its own on it. The replica is stopped, paused and
restarted for real; nothing is mocked. Nothing waits a fixed time: each test polls for the state it
expects (tests.support.wait_until)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from broker.topics import event_topic
from central.store.db import make_engine, make_session_factory
from central.store.read_replica import (
    FALLBACK_HEADER,
    SOURCE_HEADER,
    STALENESS_HEADER,
    Freshness,
    ReadRouter,
    ReplicaProbe,
    check_read_urls,
    lag_seconds,
    next_backoff,
    replica_engine,
    replica_state,
    transition_message,
)
from sharpeyes.services.postgres_cluster import PostgresCluster, PostgresClusterError, parse_lsn
from tests.central.conftest import Workflow
from tests.central.factories import EDGE, SITE, T0, event, wire
from tests.support import wait_until

EVENTS = event_topic(SITE, EDGE)
LOGGER = "central.store.read_replica"

# -- the decision, pure -------------------------------------------------------------------------------


def probe(primary: int, replayed: int | None, age: float | None, *, in_recovery: bool = True,
          caught_up_in: float | None = None) -> ReplicaProbe:
    return ReplicaProbe(in_recovery, primary, replayed, age, caught_up_in)


def test_a_replica_that_has_replayed_the_primarys_position_is_current_however_old_its_last_commit() -> None:
    # An idle primary: the last replayed commit is an hour old, yet the replica lacks nothing.
    assert lag_seconds(probe(1000, 1000, 3600.0)) == 0.0
    assert lag_seconds(probe(1000, 1200, 3600.0)) == 0.0  # read after the primary's position: ahead is current
    assert lag_seconds(probe(1000, 900, 3600.0, caught_up_in=0.05)) == 0.05  # reached it within the wait
    assert replica_state(probe(1000, 1000, 3600.0), 30.0) == ("ok", Freshness("replica", 0.0))


def test_a_replica_behind_the_primarys_position_is_as_stale_as_its_last_replayed_commit() -> None:
    assert lag_seconds(probe(1000, 900, 4.5)) == 4.5
    assert replica_state(probe(1000, 900, 4.5), 30.0) == ("ok", Freshness("replica", 4.5))
    assert replica_state(probe(1000, 900, 42.0), 30.0) == (
        "behind", Freshness("primary", 0.0, "replica behind by 42 s > bound 30 s"))
    assert replica_state(probe(1000, 900, 30.0), 30.0)[0] == "ok"  # the bound itself is still fine
    # Behind with no commit replayed since it started: how far in time is unknown, so not read.
    assert lag_seconds(probe(1000, 900, None)) is None
    state, freshness = replica_state(probe(1000, 900, None), 30.0)
    assert state == "behind" and freshness.source == "primary"
    assert freshness.fallback == "replica behind by 100 bytes of WAL, replay time unknown"


def test_a_replica_that_does_not_answer_or_is_no_standby_is_not_read() -> None:
    assert replica_state(None, 30.0) == ("down", Freshness("primary", 0.0, "replica unreachable"))
    state, freshness = replica_state(probe(1000, None, None, in_recovery=False), 30.0)
    assert state == "unusable" and freshness.source == "primary" and "not a standby" in (freshness.fallback or "")


def test_a_down_replica_is_asked_again_after_a_doubling_bounded_wait() -> None:
    waits = [next_backoff(None, 1.0, 15.0)]
    for _ in range(6):
        waits.append(next_backoff(waits[-1], 1.0, 15.0))
    assert waits == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_each_change_of_the_replicas_state_is_one_log_line() -> None:
    down = Freshness("primary", 0.0, "replica unreachable")
    assert transition_message("ok", "ok", Freshness("replica", 0.2)) is None
    assert transition_message("down", "down", down) is None
    assert transition_message("ok", "down", down) == "replica unreachable; statistics and exports read the primary until it recovers"
    assert "usable again" in (transition_message("down", "ok", Freshness("replica", 0.0)) or "")
    assert "in use" in (transition_message(None, "ok", Freshness("replica", 0.0)) or "")


def test_freshness_as_headers_and_body() -> None:
    assert Freshness("primary").headers() == {SOURCE_HEADER: "primary", STALENESS_HEADER: "0.0"}
    assert Freshness("replica", 0.44).headers() == {SOURCE_HEADER: "replica", STALENESS_HEADER: "0.4"}
    fell_back = Freshness("primary", 0.0, "replica read failed: le serveur a été arrêté\nbrutalement")
    assert fell_back.headers()[FALLBACK_HEADER] == "replica read failed: le serveur a ?t? arr?t? brutalement"
    assert fell_back.as_dict() == {"source": "primary", "staleness_s": 0.0, "fallback": fell_back.fallback}


def test_a_read_url_needs_postgresql_on_both_sides() -> None:
    check_read_urls("sqlite:///var/central.db", None)  # no replica: anything goes
    check_read_urls("postgresql+psycopg://p@h/db", "postgresql+psycopg://p@r/db")
    with pytest.raises(ValueError, match="--database-url is a sqlite URL"):
        check_read_urls("sqlite:///var/central.db", "postgresql+psycopg://p@r/db")
    with pytest.raises(ValueError, match="--read-database-url is a sqlite URL"):
        check_read_urls("postgresql+psycopg://p@h/db", "sqlite:///copy.db")
    with pytest.raises(ValueError, match="--read-max-lag-s"):
        check_read_urls("postgresql+psycopg://p@h/db", "postgresql+psycopg://p@r/db", -1)


def test_serve_offers_the_read_replica_options() -> None:
    from central.cli import app

    res = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "--read-database-url" in res.output and "--read-max-lag-s" in res.output


def test_without_a_replica_everything_reads_the_primary_at_staleness_zero(wf: Workflow) -> None:
    wf.ingest(EVENTS, wire(event("k-plain", score=0.9)))
    res = wf.get("admin", "/api/v1/stats")
    assert res.status_code == 200
    assert res.json()["freshness"] == {"source": "primary", "staleness_s": 0.0, "fallback": None}
    assert (res.headers[SOURCE_HEADER], res.headers[STALENESS_HEADER]) == ("primary", "0.0")
    assert FALLBACK_HEADER not in res.headers


# -- a real primary and replica ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    with PostgresCluster(tmp_path_factory.mktemp("postgres-cluster")) as started:
        yield started


@pytest.fixture
def databases(cluster: PostgresCluster) -> Iterator[tuple[str, str]]:
    """A database of this test's own on the primary, and the replica's copy of it; the replica is left
    running and replaying whatever the test did to it."""
    yield cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    if not cluster.running("replica"):
        cluster.start_replica()
    if cluster.query("SELECT pg_is_wal_replay_paused()", on="replica")[0][0]:
        cluster.resume_replay()
    cluster.wait_until_replicated()


@pytest.fixture
def replicated(databases: tuple[str, str], tmp_path: Path) -> Iterator[Workflow]:
    """Central on the primary with --read-database-url on the replica and a bound of 1 s; a down replica
    is asked again within 0.5 s (the default backoff grows to 15 s)."""
    from fastapi.testclient import TestClient

    from central.server import build_central
    from central.store.clock import ManualClock
    from tests.central.factories import workflow_config, workflow_site

    primary_url, replica_url = databases
    clock = ManualClock(T0)
    built = build_central(workflow_site(), primary_url, tmp_path / "evidence", tmp_path / "var", ingest=False,
                          workflow=workflow_config(), clock=clock, read_database_url=replica_url, read_max_lag_s=1.0)
    assert built.ctx.reads is not None and built.ctx.reads.replica is not None
    built.ctx.reads.backoff_min_s = built.ctx.reads.backoff_max_s = 0.5
    with TestClient(built.app) as client:
        yield Workflow(built, client, clock, {})
    built.close()


def stats_when(wf: Workflow, expected: Callable[[Any], bool], what: str, timeout: float = 30.0, **params: object) -> Any:
    """Poll GET /stats until its answer (always a 200) is as expected; that answer."""
    def check() -> Any:
        res = wf.get("admin", "/api/v1/stats", **params)
        assert res.status_code == 200, res.text
        return res if expected(res) else None

    return wait_until(check, timeout, what=what)


def source(res: Any) -> str:
    assert res.headers[SOURCE_HEADER] == res.json()["freshness"]["source"]
    return str(res.headers[SOURCE_HEADER])


def ingest(wf: Workflow, *keys: str) -> None:
    """One incident per key ``k-N``: events N * 2 hours apart (nearer ones would join one incident)."""
    for key in keys:
        started = T0 + timedelta(hours=2 * int(key.rsplit("-", 1)[1]))
        wf.ingest(EVENTS, wire(event(key, score=0.9, started_at=started)))


def test_the_cluster_streams_the_primarys_writes_to_a_read_only_standby(cluster: PostgresCluster,
                                                                        databases: tuple[str, str]) -> None:
    primary_url, replica_url = databases
    assert primary_url.startswith("postgresql+psycopg://postgres@127.0.0.1:") and primary_url != replica_url
    name = primary_url.rsplit("/", 1)[1]
    cluster.query("CREATE TABLE marks (n int)", database=name)
    cluster.query("INSERT INTO marks SELECT generate_series(1, 100)", database=name)
    cluster.wait_until_replicated()
    assert cluster.replication_lag_bytes() == 0
    assert cluster.query("SELECT count(*) FROM marks", on="replica", database=name) == [(100,)]
    assert cluster.query("SELECT pg_is_in_recovery()", on="replica") == [(True,)]
    cluster.pause_replay()
    cluster.query("INSERT INTO marks SELECT generate_series(1, 100)", database=name)
    wait_until(lambda: cluster.replication_lag_bytes() > 0, 10, what="the paused standby to fall behind")
    assert cluster.query("SELECT count(*) FROM marks", on="replica", database=name) == [(100,)]
    cluster.resume_replay()
    cluster.wait_until_replicated()
    assert cluster.query("SELECT count(*) FROM marks", on="replica", database=name) == [(200,)]
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848


def test_a_server_that_does_not_start_says_why_with_its_logs_tail(cluster: PostgresCluster,
                                                                   databases: tuple[str, str]) -> None:
    cluster.stop_replica()
    conf = cluster.data_dir("replica") / "postgresql.conf"
    original = conf.read_text(encoding="utf-8")
    try:
        with conf.open("a", encoding="utf-8") as out:
            out.write("shared_buffers = lots\n")
        with pytest.raises(PostgresClusterError, match=r'invalid value for parameter "shared_buffers": "lots"'):
            cluster.start_replica()
        assert not cluster.running("replica")
    finally:
        conf.write_text(original, encoding="utf-8")  # the fixture starts it again


def test_writes_never_go_through_the_read_engine(cluster: PostgresCluster, databases: tuple[str, str]) -> None:
    primary_url, replica_url = databases
    for url in (replica_url, primary_url):  # even a read URL that names the primary by mistake
        engine = replica_engine(url)
        try:
            with engine.connect() as conn, pytest.raises(DBAPIError, match="read-only transaction"):
                conn.execute(text("CREATE TABLE nope (n int)"))
        finally:
            engine.dispose()
    # A read URL naming the primary is no standby: not read, and the response says why.
    primary = make_engine(primary_url)
    try:
        reads = ReadRouter(make_session_factory(primary), sessionmaker(replica_engine(primary_url)))
        assert reads.reader()[1] == Freshness("primary", 0.0, "read database is not a standby (pg_is_in_recovery() is false)")
        reads.close()
    finally:
        primary.dispose()


def test_stats_read_the_replica_and_show_what_was_written_to_the_primary(replicated: Workflow) -> None:
    wf = replicated
    ingest(wf, "k-1", "k-2", "k-3")
    res = stats_when(wf, lambda r: source(r) == "replica" and r.json()["total"] == 3, "the replica's stats to show 3")
    body = res.json()
    assert body["freshness"]["fallback"] is None and body["freshness"]["staleness_s"] <= 1.0
    assert float(res.headers[STALENESS_HEADER]) == body["freshness"]["staleness_s"]
    # The CSV, the month's index, the models' figures and the access-log export read there too.
    csv = wf.get("admin", "/api/v1/stats", format="csv")
    assert csv.status_code == 200 and csv.headers[SOURCE_HEADER] == "replica" and csv.headers["content-type"].startswith("text/csv")
    for path, params in (("/api/v1/stats/index", {"month": "2026-11"}), ("/api/v1/stats/index", {"format": "csv"}),
                         ("/api/v1/stats/models", {}), ("/api/v1/access-log", {}), ("/api/v1/access-log", {"format": "csv"})):
        answer = wf.get("admin", path, **params)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers[SOURCE_HEADER] == "replica", path
        assert STALENESS_HEADER in answer.headers and FALLBACK_HEADER not in answer.headers, path
    index = {row["code"]: row for row in wf.get("admin", "/api/v1/stats/index", month="2026-11").json()}
    assert index["g1"]["incidents"] == 3
    # Writes still go to the primary: an action through the API, then the replica shows its outcome.
    incidents = wf.get("admin", "/api/v1/incidents").json()["items"]
    assert wf.act("monitor", incidents[0]["id"], "dismiss", reason="a shadow").status_code == 200
    stats_when(wf, lambda r: source(r) == "replica" and r.json()["counts_by_state"].get("closed") == 1,
               "the replica's stats to show the dismissal")


def test_a_stopped_replica_falls_back_to_the_primary_and_comes_back(replicated: Workflow, cluster: PostgresCluster,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    wf = replicated
    caplog.set_level(logging.INFO, logger=LOGGER)
    ingest(wf, "k-1")
    stats_when(wf, lambda r: source(r) == "replica" and r.json()["total"] == 1, "the replica to be read")
    caplog.clear()
    cluster.stop_replica()
    ingest(wf, "k-2")  # written while the replica is down: the primary has it
    res = stats_when(wf, lambda r: source(r) == "primary", "a fallback to the primary")
    assert res.json()["total"] == 2
    assert res.json()["freshness"] == {"source": "primary", "staleness_s": 0.0, "fallback": "replica unreachable"}
    assert res.headers[FALLBACK_HEADER] == "replica unreachable" and res.headers[STALENESS_HEADER] == "0.0"
    for path in ("/api/v1/stats/index", "/api/v1/stats/models", "/api/v1/access-log"):
        answer = wf.get("admin", path)
        assert answer.status_code == 200 and answer.headers[FALLBACK_HEADER] == "replica unreachable", path
    for _ in range(5):  # asked again and again while it is down: still one line in the log
        assert wf.get("admin", "/api/v1/stats", hazard="fire_lane_blocked").status_code == 200
    cluster.start_replica()
    back = stats_when(wf, lambda r: source(r) == "replica" and r.json()["total"] == 2, "reads to return to the replica")
    assert FALLBACK_HEADER not in back.headers
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("replica unreachable" in m for m in said) == 1, said
    assert sum("usable again" in m for m in said) == 1, said


def test_a_replica_paused_behind_the_bound_falls_back_and_says_why(replicated: Workflow, cluster: PostgresCluster) -> None:
    wf = replicated
    ingest(wf, "k-1")
    stats_when(wf, lambda r: source(r) == "replica" and r.json()["total"] == 1, "the replica to be read")
    cluster.pause_replay()
    ingest(wf, "k-2", "k-3")  # the replica receives these but does not apply them
    res = stats_when(wf, lambda r: source(r) == "primary", "a fallback past the 1 s bound")
    assert res.json()["total"] == 3  # the primary's figures, not the paused replica's
    fallback = res.json()["freshness"]["fallback"]
    assert fallback.startswith("replica behind by ") and fallback.endswith(" s > bound 1 s"), fallback
    assert res.headers[FALLBACK_HEADER] == fallback
    csv = wf.get("admin", "/api/v1/stats", format="csv")
    assert csv.headers[SOURCE_HEADER] == "primary" and csv.headers[FALLBACK_HEADER].startswith("replica behind by ")
    cluster.resume_replay()
    back = stats_when(wf, lambda r: source(r) == "replica" and r.json()["total"] == 3, "reads to return to the replica")
    assert back.json()["freshness"]["fallback"] is None


def test_the_probe_is_cached_and_a_down_replica_is_asked_again_only_after_its_backoff(
        cluster: PostgresCluster, databases: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    primary_url, replica_url = databases
    now = [100.0]
    primary = make_engine(primary_url)
    reads = ReadRouter(make_session_factory(primary), sessionmaker(replica_engine(replica_url)), max_lag_s=30.0,
                       probe_interval_s=1.0, backoff_min_s=1.0, backoff_max_s=4.0, clock=lambda: now[0])
    try:
        assert reads.reader()[1].source == "replica"
        cluster.stop_replica()
        assert reads.reader()[1].source == "replica"  # the probe of a moment ago still stands
        now[0] += 1.0
        assert reads.reader()[1] == Freshness("primary", 0.0, "replica unreachable")
        now[0] += 1.0  # the first backoff (1 s) is over: asked again, still down; the next wait is 2 s
        assert reads.state == "down" and reads.reader()[1].source == "primary"
        cluster.start_replica()
        cluster.wait_until_replicated()
        now[0] += 1.5
        assert reads.reader()[1].source == "primary"  # back, but not asked yet
        now[0] += 0.5
        assert reads.reader()[1].source == "replica"
        # A read that fails on the replica under it is done on the primary, and says so.
        cluster.stop_replica()
        rows, freshness = reads.read(lambda s: s.execute(text("SELECT 1")).scalar_one())
        assert (rows, freshness) == (1, Freshness("primary", 0.0, "replica unreachable"))
    finally:
        reads.close()
        primary.dispose()
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("replica unreachable" in m for m in said) == 2, said  # down, back, down again
    assert sum("usable again" in m for m in said) == 1, said
