"""One access rule, two renderings: for any actor and any incidents, the API's SQL filter selects
exactly the incidents ``workflow.can_see`` lets the actor see (hypothesis, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from central.api.routes_incidents import visible
from central.store.tables import Incident
from central.workflow.rules import Actor, can_see
from central.workflow.vocabulary import Role
from tests.central.conftest import Store

NOW = datetime(2026, 12, 5, tzinfo=UTC)
CELLS = ["g1", "g2", "g3", None]
PEOPLE = ["wang", "li", None]
UNITS = ["pm-1", "pm-2", None]

actors = st.builds(
    Actor, username=st.just("someone"), role=st.sampled_from([r.value for r in Role]),
    worker=st.sampled_from(PEOPLE), unit=st.sampled_from(UNITS),
    scope=st.one_of(st.none(), st.frozensets(st.sampled_from(["g1", "g2", "g3"]), max_size=3)),
)
incidents = st.lists(st.tuples(st.sampled_from(CELLS), st.sampled_from(PEOPLE), st.sampled_from(UNITS)),
                     min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actor=actors, rows=incidents)
def test_sql_filter_and_predicate_agree(store: Store, actor: Actor, rows: list[tuple]) -> None:
    with store.sessions() as s:
        s.execute(delete(Incident))
        s.execute(insert(Incident), [
            dict(incident_key=f"k-{i}", hazard="fire_lane_blocked", site="demo", state="received", condition="active",
                 started_at=NOW, last_observed_at=NOW, created_at=NOW, updated_at=NOW, grid_cell=cell,
                 assigned_worker=worker, assigned_unit=unit)
            for i, (cell, worker, unit) in enumerate(rows)])
        s.commit()
        everything = list(s.scalars(select(Incident)))
        in_sql = set(s.scalars(visible(select(Incident.incident_key), actor)))
        in_python = {i.incident_key for i in everything if can_see(actor, i)}
    assert in_sql == in_python
