"""Statistics in the database (central/reporting/stats_sql.py) against their pure definition (central/reporting/stats.py)
on 5,000 incidents with audit trails, on SQLite and PostgreSQL; and /stats through the API beyond
the 500 incidents the console used to count in the browser."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from central.reporting import stats, stats_sql
from central.store.tables import AuditRecord, Incident
from central.workflow.config import IndexFormula
from central.workflow.routing import GridRouter
from tests.central.conftest import Store, Workflow
from tests.central.factories import T0, site_config

N = 5000
STATES = ["received", "triage", "registered", "dispatched", "in_progress", "feedback", "checking", "closed"]
PATH = ["received", "triage", "registered", "dispatched", "in_progress", "feedback", "checking", "closed"]


def _incidents(seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    incidents, audit = [], []
    for i in range(1, N + 1):
        state = rng.choice(STATES)
        close_reason = rng.choice(["fixed", "false_alarm", "suppressed", "duplicate"]) if state == "closed" else None
        started = T0 - timedelta(days=rng.randrange(60), seconds=rng.randrange(86400))
        incidents.append(dict(
            id=i, incident_key=f"k-{i}", hazard=rng.choice(["fire_lane_blocked", "ebike_indoor", "zone_occupancy"]),
            site="demo", edge="edge-1", camera=rng.choice(["street-north", "elevator-1", "lobby", None]),
            zone=rng.choice(["kerb-lane", "car", None]), grid_cell=rng.choice(["g1", "g2", "c1", None]), state=state,
            condition="active", started_at=started, last_observed_at=started, max_score=0.8, event_count=1,
            created_at=started, updated_at=started, ever_overdue=rng.random() < 0.3,
            rework_count=rng.choice([0, 0, 0, 1, 2]), escalated_to=rng.choice([None, None, "c1", "g1"]),
            deadline_color=rng.choice([None, "green", "yellow", "red"]), close_reason=close_reason,
        ))
        at = started
        steps = PATH[: PATH.index(state) + 1] if state in PATH else ["received"]
        for seq, (before, after) in enumerate(zip([None, *steps], steps, strict=False)):
            at += timedelta(seconds=rng.randrange(1, 7200))
            audit.append(dict(incident_id=i, seq=seq, at=at, actor="t", action="step", from_state=before,
                              to_state=after, reason=None, payload={}, payload_sha256="0" * 64, prev_hash="0" * 64,
                              hash=f"{i:032d}{seq:032d}"))
        if rng.random() < 0.2:  # a record-only read, which the figures leave out
            audit.append(dict(incident_id=i, seq=len(steps), at=at + timedelta(days=3), actor="t", action="evidence_read",
                              from_state=state, to_state=state, reason=None, payload={}, payload_sha256="0" * 64,
                              prev_hash="0" * 64, hash=f"r{i:031d}{0:032d}"))
    return incidents, audit


@pytest.fixture
def filled(store: Store) -> tuple[Store, list[dict], list[dict]]:
    incidents, audit = _incidents()
    with store.sessions() as s:
        for start in range(0, N, 1000):
            s.execute(insert(Incident), incidents[start:start + 1000])
        for start in range(0, len(audit), 2000):
            s.execute(insert(AuditRecord), audit[start:start + 2000])
        s.commit()
    return store, incidents, audit


def _oracle(incidents: list[dict], audit: list[dict], tree) -> dict:  # noqa: ANN001
    facts = [stats.IncidentFacts(i["id"], i["state"], i["camera"], i["zone"], i["grid_cell"], i["close_reason"],
                                 i["ever_overdue"], i["rework_count"], i["escalated_to"], i["deadline_color"])
             for i in incidents]
    steps = [stats.Step(a["incident_id"], a["at"], a["from_state"], a["to_state"]) for a in audit
             if a["action"] != "evidence_read"]
    return stats.summary(facts, steps, tree)


def test_the_database_gives_the_defined_figures_for_5000_incidents(filled) -> None:  # noqa: ANN001
    store, incidents, audit = filled
    tree = GridRouter(site_config()).tree
    expected = _oracle(incidents, audit, tree)
    with store.sessions() as s:
        got = stats_sql.summary(s, select(Incident), tree)
    for key, value in expected.items():
        if key == "mean_stage_s":
            assert got[key] == pytest.approx(value, abs=0.11), key
        else:
            assert got[key] == value, key
    counted = [i for i in incidents if i["close_reason"] != "suppressed"]
    assert got["total"] == len(counted) > 500
    assert sum(d["incidents"] for d in got["by_day"]) == len(counted)
    assert {d["day"]: d["incidents"] for d in got["by_day"]} == dict(Counter(
        i["started_at"].date().isoformat() for i in counted))
    assert {h["hazard"]: h["incidents"] for h in got["by_hazard"]} == dict(Counter(i["hazard"] for i in counted))
    assert {c["grid_cell"]: c["incidents"] for c in got["by_grid_cell"]} == dict(Counter(i["grid_cell"] for i in counted))


def test_the_monthly_index_from_grouped_counts_matches_its_definition(filled) -> None:  # noqa: ANN001
    store, incidents, _ = filled
    tree = GridRouter(site_config()).tree
    formula = IndexFormula()
    facts = [stats.IncidentFacts(i["id"], i["state"], i["camera"], i["zone"], i["grid_cell"], i["close_reason"],
                                 i["ever_overdue"], i["rework_count"], i["escalated_to"], i["deadline_color"])
             for i in incidents]
    with store.sessions() as s:
        assert stats_sql.grid_index(s, select(Incident), tree, formula) == stats.grid_index(facts, tree, formula)


def test_stats_api_counts_every_incident_of_a_period_beyond_500(wf: Workflow) -> None:
    incidents, audit = _incidents(seed=11)
    with wf.central.ctx.sessions() as s:
        s.execute(insert(Incident), [{**i, "grid_cell": "g1" if i["grid_cell"] else None} for i in incidents])
        s.execute(insert(AuditRecord), audit)
        s.commit()
    wf.central.ctx.changed()
    body = wf.get("admin", "/api/v1/stats").json()
    counted = [i for i in incidents if i["close_reason"] != "suppressed"]
    assert body["total"] == len(counted) and sum(d["incidents"] for d in body["by_day"]) == len(counted)
    since = (T0 - timedelta(days=7)).isoformat()
    week = wf.get("admin", "/api/v1/stats", since=since).json()
    assert week["total"] == sum(1 for i in counted if i["started_at"] >= T0 - timedelta(days=7))
    # A grid chief of c1 sees g1's incidents only, counted in the database too.
    chief = wf.get("chief", "/api/v1/stats").json()
    assert chief["total"] == sum(1 for i in counted if i["grid_cell"])
