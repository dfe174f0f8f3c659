"""The state machine itself (pure): every action in every state, and who may take it."""

from __future__ import annotations

import pytest

from central.workflow.grid import GridTree, Node, point_in_polygon, scope_for
from central.workflow.rules import (
    ACTIONS,
    STATES,
    Actor,
    Forbidden,
    IllegalTransition,
    IncidentView,
    MissingReason,
    allowed_actions,
    check_action,
)

ADMIN = Actor("root", "admin")
TREE = GridTree.of([
    Node("s1", "Street", "street", None, ("street-chief",)),
    Node("c1", "C1", "community", "s1", ("zhao",)),
    Node("c2", "C2", "community", "s1"),
    Node("g1", "G1", "grid", "c1", ("wang",)),
    Node("g3", "G3", "grid", "c2", ("chen",)),
])

# The specification's table: action -> states it is legal in, and the state it leads to.
EXPECTED = {
    "confirm": ({"triage"}, "registered"),
    "dismiss": ({"triage"}, "closed"),
    "dispatch": ({"registered", "returned"}, "dispatched"),
    "accept": ({"dispatched"}, "in_progress"),
    "return": ({"dispatched"}, "returned"),
    "feedback": ({"in_progress"}, "feedback"),
    "check": ({"feedback"}, "checking"),
    "pass": ({"checking"}, "closed"),
    "fail": ({"checking"}, "in_progress"),
    "close": (set(STATES) - {"closed"}, "closed"),
    "merge": (set(STATES) - {"closed"}, "closed"),
    "supervise": (set(STATES) - {"closed"}, None),
}


def view(state: str, cell: str = "g1", worker: str | None = "wang", unit: str | None = None,
         feedback_by: str | None = None) -> IncidentView:
    return IncidentView(state, cell, worker, unit, feedback_by)


def test_the_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(ACTIONS)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_every_action_in_every_state(action: str, state: str) -> None:
    legal_in, target = EXPECTED[action]
    if state in legal_in:
        t = check_action(action, ADMIN, view(state), reason="because")
        assert t.target == target
    else:
        with pytest.raises(IllegalTransition) as err:
            check_action(action, ADMIN, view(state), reason="because")
        # The 409 names what is possible instead.
        assert err.value.allowed == [a for a, (states, _) in EXPECTED.items() if state in states]


def test_unknown_action_is_illegal_with_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as err:
        check_action("teleport", ADMIN, view("triage"))
    assert err.value.allowed == ["confirm", "dismiss", "close", "merge", "supervise"]


def test_reasons_are_required_where_the_record_needs_one() -> None:
    for action, state in (("dismiss", "triage"), ("return", "dispatched"), ("fail", "checking"), ("close", "triage")):
        with pytest.raises(MissingReason):
            check_action(action, ADMIN, view(state), reason=" ")


def actor(role: str, scope: frozenset[str] | None = None, **kw: str) -> Actor:
    return Actor(f"u-{role}", role, scope=scope, **kw)  # type: ignore[arg-type]


def test_allowed_actions_per_role() -> None:
    triage = view("triage")
    assert allowed_actions(actor("monitor"), triage) == ["confirm", "dismiss", "merge"]
    assert allowed_actions(actor("supervisor"), triage) == ["close", "supervise"]
    assert allowed_actions(actor("grid_chief", TREE.subtree(["c1"])), triage) == ["supervise"]
    assert allowed_actions(actor("grid_worker", frozenset({"g1"}), worker="wang"), triage) == []
    dispatched = view("dispatched")
    assert allowed_actions(actor("grid_worker", frozenset({"g1"}), worker="wang"), dispatched) == ["accept", "return"]
    # Dispatched to a unit: the unit accepts; the grid worker only supervises (sees, cannot accept).
    to_unit = view("dispatched", unit="pm-1")
    assert allowed_actions(actor("grid_worker", frozenset({"g1"}), worker="wang"), to_unit) == []
    assert allowed_actions(actor("unit", unit="pm-1"), to_unit) == ["accept", "return"]
    assert allowed_actions(actor("unit", unit="pm-2"), to_unit) == []
    checking = view("checking", feedback_by="u-monitor")
    assert allowed_actions(actor("grid_chief", TREE.subtree(["c1"])), checking) == ["pass", "fail", "supervise"]
    # A second person checks: whoever gave the feedback may not pass it.
    assert "pass" not in allowed_actions(actor("monitor"), checking)


def test_scope_refuses_other_grids() -> None:
    g3 = view("triage", cell="g3", worker="chen")
    c1_monitor = actor("monitor", TREE.subtree(["c1"]))
    assert allowed_actions(c1_monitor, g3) == []
    with pytest.raises(Forbidden):
        check_action("confirm", c1_monitor, g3)
    wang = actor("grid_worker", frozenset({"g1"}), worker="wang")
    with pytest.raises(Forbidden):
        check_action("accept", wang, view("dispatched", cell="g3", worker="chen"))


def test_scopes_from_the_grid_tree() -> None:
    assert scope_for(TREE, "admin", ["g1"], None) is None
    assert scope_for(TREE, "monitor", [], None) is None
    assert scope_for(TREE, "monitor", ["c1"], None) == {"c1", "g1"}
    assert scope_for(TREE, "grid_chief", ["s1"], None) == {"s1", "c1", "c2", "g1", "g3"}
    assert scope_for(TREE, "grid_chief", [], None) == frozenset()
    # A worker covers the cells that list them, not the cells below a community that lists them.
    assert scope_for(TREE, "grid_worker", [], "zhao") == {"c1"}
    assert scope_for(TREE, "grid_worker", [], "wang") == {"g1"}
    assert [n.code for n in TREE.ancestors("g1")] == ["c1", "s1"]


def test_point_in_polygon() -> None:
    square = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert point_in_polygon(0.5, 0.5, square) and not point_in_polygon(1.5, 0.5, square)


def test_workflow_file_errors_name_the_file_the_key_and_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from broker.configbase import ConfigError
    from central.workflow.config import load_workflow_config, parse_duration
    from tests.central.factories import workflow_site

    bad = tmp_path / "workflow.yaml"
    bad.write_text("hazards:\n  fire_lane: {}\ndefaults:\n  deadlines: {handle: soon}\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_workflow_config(bad)
    text = str(err.value)
    assert str(bad) in text and "unknown hazard 'fire_lane'" in text
    assert "defaults.deadlines.handle" in text and "30m, 4h" in text
    assert "defaults.colour" in text and "remove this key" in text

    dangling = tmp_path / "units.yaml"
    dangling.write_text("units:\n  - {id: pm, name: P, kind: property, grid: [nowhere]}\n")
    with pytest.raises(ConfigError) as err:
        load_workflow_config(dangling).check_against(workflow_site(), str(dangling))
    assert "units[0].grid: 'nowhere' is not a grid cell" in str(err.value)
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("2d") == 172800
