"""Desired against reported configuration state on plain data: the drift of an edge (in sync, since
when, why), the version comparison shared by edge and central, the heartbeat's new fields as the
ingest planner stores them, and the wire staying v1 for a central that does not know them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from pydantic import ConfigDict, ValidationError

from broker.desiredstate import DESIRED_VERSION_ARG, config_hash_of, desired_version_of, needs_apply
from broker.payloads import ConfigApplied, ConfigRefused, ConfigReport, EdgeHeartbeat, EdgeStatus
from broker.topics import status_topic
from central.fleet.drift import Desired, Reported, drift_row, drift_since, hash_needed, in_sync, why
from central.ingest.model import StoreView
from central.ingest.parse import parse_message
from central.ingest.plan import Rules, plan_batch
from central.workflow.routing import GridRouter
from tests.central.factories import EDGE, SITE, T0

H5, H6, H7 = "aaaaaaaaaaa5", "aaaaaaaaaaa6", "aaaaaaaaaaa7"
ROUTER = GridRouter(None)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- the version comparison (broker/desiredstate.py) ----------------------------------------------

def test_the_number_travels_in_the_args_and_anything_else_is_no_number() -> None:
    assert desired_version_of({"edge_config": {}, DESIRED_VERSION_ARG: 7}) == 7
    for bad in (None, 0, -1, True, "7", 7.0):
        assert desired_version_of({DESIRED_VERSION_ARG: bad}) is None
    assert desired_version_of({"edge_config": {}}) is None  # an older central


def test_the_applied_hash_comes_from_every_edges_status_version() -> None:
    assert config_hash_of("0.1.0+config.0123456789ab") == "0123456789ab"
    assert config_hash_of("0.1.0") is None and config_hash_of(None) is None
    assert config_hash_of("0.1.0+config.0123") is None


def test_the_same_content_is_never_applied_twice() -> None:
    assert not needs_apply(H5, H5)
    assert needs_apply(H5, H6)


# -- drift (central/fleet/drift.py) ----------------------------------------------------------------

def test_an_edge_that_applied_the_desired_number_is_in_sync_without_its_hash() -> None:
    reported = Reported(state="online", last_heartbeat_at=_at(9), version=6, hash=H6, since=_at(2))
    assert not hash_needed(6, reported)
    desired = Desired(6, _at(1))
    assert in_sync(desired, reported) and drift_since(desired, reported, None) is None
    row = drift_row(SITE, EDGE, desired, reported)
    assert row == {"edge": EDGE, "site": SITE, "desired_version": 6, "applied_version": 6, "applied_at": _at(2),
                   "in_sync": True, "drift_since": None, "problems": [], "last_heartbeat_at": _at(9)}


def test_an_edge_one_version_behind_drifts_since_that_version_was_stored() -> None:
    reported = Reported(state="offline", last_heartbeat_at=_at(3), version=5, hash=H5, since=_at(0))
    assert hash_needed(7, reported)
    desired = Desired(7, _at(20), H7)
    assert not in_sync(desired, reported)
    # Version 6 (stored at minute 10) is the first it lacks: the drift began then, not at version 7.
    assert drift_since(desired, reported, _at(10)) == _at(10)
    assert drift_since(desired, reported, None) == _at(20)
    assert why(desired, reported) == ["edge offline: the broker hands it version 7 when it reconnects"]
    online = Reported(state="online", version=5, hash=H5, since=_at(0))
    assert why(desired, online) == ["waiting for the edge to apply version 7"]


def test_content_decides_where_both_hashes_are_known() -> None:
    # Version 7 restores version 5's configuration: an edge running 5 has what 7 asks for.
    assert in_sync(Desired(7, _at(20), H5), Reported(state="online", version=5, hash=H5))
    # An edge too old to report numbers: its status's hash against the desired one.
    assert in_sync(Desired(3, _at(1), H5), Reported(state="online", hash=H5))
    assert not in_sync(Desired(3, _at(1), H6), Reported(state="online", hash=H5))
    # Nothing reported: never in sync, and the drift runs from the version's storing.
    never = Reported()
    assert not in_sync(Desired(1, _at(1), H5), never) and drift_since(Desired(1, _at(1), H5), never, None) == _at(1)
    assert why(Desired(1, _at(1), H5), never) == ["no status from this edge yet: it gets version 1 when it connects"]


def test_a_refused_version_is_drift_with_the_edges_own_problems() -> None:
    problems = ("cameras street-north: model nope: not in the registry",)
    reported = Reported(state="online", version=5, hash=H5, since=_at(0), refused_version=6, refused_hash=H6,
                        refused_problems=problems, refused_at=_at(11))
    desired = Desired(6, _at(10), H6)
    row = drift_row(SITE, EDGE, desired, reported, _at(10))
    assert (row["in_sync"], row["desired_version"], row["applied_version"]) == (False, 6, 5)
    assert row["problems"] == list(problems) and row["drift_since"] == _at(10)
    # A refusal of an older version is no reason for the drift from a newer one.
    assert why(Desired(7, _at(12), H7), reported) == ["waiting for the edge to apply version 7"]


def test_an_edge_running_what_central_never_numbered_says_so() -> None:
    reported = Reported(state="online", hash=H5, since=_at(0))
    assert why(Desired(2, _at(5), H6), reported)[0].startswith("the edge runs a configuration central did not number")
    # No version on record at central: the site file's configuration is desired, compared by content.
    assert in_sync(Desired(None, None, H5), reported)
    assert drift_since(Desired(None, None, H6), reported, None) == _at(0)


# -- the heartbeat's report on the wire (broker/payloads.py) ---------------------------------------

def _beat(config: ConfigReport | None = None) -> EdgeHeartbeat:
    return EdgeHeartbeat(interval_s=60, outbox_messages=0, outbox_bytes=0, config=config)


def _status(beat: EdgeHeartbeat, at_s: float = 0) -> EdgeStatus:
    return EdgeStatus(site=SITE, edge=EDGE, state="online", at=T0 + timedelta(seconds=at_s),
                      version=f"0.1.0+config.{H6}", heartbeat=beat)


class _OldHeartbeat(EdgeHeartbeat):
    """The v1 heartbeat as a central before desired state reads it: unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def test_a_heartbeat_without_a_report_is_the_bytes_an_older_central_reads() -> None:
    data = json.loads(_status(_beat()).to_wire())
    assert "config" not in data["heartbeat"]
    fields = set(_OldHeartbeat.model_fields) - {"config"}
    assert set(data["heartbeat"]) <= fields
    report = ConfigReport(applied=ConfigApplied(version=6, hash=H6, since=T0))
    sent = json.loads(_status(_beat(report)).to_wire())["heartbeat"]["config"]
    assert sent == {"applied": {"version": 6, "hash": H6, "since": "2026-11-23T08:00:00Z"}, "refused": None}
    assert EdgeStatus.model_validate_json(_status(_beat(report)).to_wire()).heartbeat.config == report  # type: ignore[union-attr]


def test_a_report_is_bounded_and_checked() -> None:
    with pytest.raises(ValidationError):
        ConfigApplied(version=0, hash=H6, since=T0)
    with pytest.raises(ValidationError):
        ConfigApplied(version=1, hash="not-a-hash", since=T0)
    with pytest.raises(ValidationError):
        ConfigRefused(problems=["x"] * 51, at=T0)


# -- the ingest planner stores it (tests/central/test_ingest_plan.py style) -----------------------

def test_the_planner_keeps_the_newest_report_and_ignores_a_replayed_older_status() -> None:
    refused = ConfigRefused(version=7, hash=H7, problems=["cameras c1: model nope: not registered"], at=_at(3))
    newer = ConfigReport(applied=ConfigApplied(version=6, hash=H6, since=_at(1)), refused=refused)
    older = ConfigReport(applied=ConfigApplied(version=5, hash=H5, since=_at(0)))
    items = [(status_topic(SITE, EDGE), _status(_beat(newer), at_s=200).to_wire()),
             (status_topic(SITE, EDGE), _status(_beat(older), at_s=100).to_wire()),
             (status_topic(SITE, EDGE), _status(_beat(None), at_s=300).to_wire())]
    now = _at(10)
    messages = [parse_message(ROUTER, topic, payload, now) for topic, payload in items]
    changes = plan_batch(messages, StoreView(), Rules(ROUTER.route, 0, now))
    assert [o.kind for o in changes.outcomes] == ["status", "ignored", "status"]
    assert changes.config_reports == {(SITE, EDGE): {
        "applied_version": 6, "applied_hash": H6, "applied_since": _at(1), "refused_version": 7, "refused_hash": H7,
        "refused_problems": ["cameras c1: model nope: not registered"], "refused_at": _at(3), "reported_at": now}}
    # A heartbeat without a report (an edge too old to send one) leaves the stored report alone.
    assert changes.statuses[(SITE, EDGE)]["version"] == f"0.1.0+config.{H6}"
