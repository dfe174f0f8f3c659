"""The city run's layout, decided before anything starts: no processes here."""

from __future__ import annotations

import pytest

from broker.payloads import HazardEvent, Phase
from sharpeyes.city.plan import (
    CORE_KILLED,
    PHASES,
    STEADY,
    WORKER_KILLED,
    CityOptions,
    CityPlanError,
    bridge_section,
    edge_specs,
    make_episode,
    phase_at,
)


def test_the_bridge_is_the_shipped_file_with_both_cores_as_its_addresses() -> None:
    text = bridge_section("district-2", 1884, 1885)
    assert "address 127.0.0.1:1884 127.0.0.1:1885\n" in text
    assert "round_robin false" in text  # the core first, the standby only when the core is gone
    assert "remote_clientid bridge-district-2\n" in text
    assert "topic sharpeyes/v1/+/+/event out 1" in text and "topic sharpeyes/v1/+/+/cmd/+ in 1" in text
    assert not [line for line in text.splitlines() if line.startswith(("bridge_cafile", "remote_password"))]


def test_edges_spread_over_districts_and_faults_fall_within_the_load() -> None:
    opts = CityOptions(events=2100, edges=4, seconds=90)
    assert [(e.id, e.district) for e in edge_specs(opts)] == [
        ("d1-edge-1", 1), ("d2-edge-1", 2), ("d1-edge-2", 1), ("d2-edge-2", 2)]
    offsets = opts.fault_offsets()
    assert list(offsets) == list(PHASES[1:])
    assert all(0 < at < opts.seconds for at in offsets.values())
    assert opts.episodes_per_edge * 3 * 4 >= 2100
    assert phase_at(0.0, offsets) == STEADY
    assert phase_at(offsets[WORKER_KILLED], offsets) == WORKER_KILLED
    assert phase_at(opts.seconds, offsets) == PHASES[-1]
    assert phase_at(offsets[CORE_KILLED] - 0.1, offsets) == PHASES[PHASES.index(CORE_KILLED) - 1]


@pytest.mark.parametrize("kwargs, option", [({"workers": 1}, "--workers"), ({"apis": 1}, "--apis"),
                                           ({"events": 3}, "--events"), ({"seconds": 5}, "--seconds")])
def test_a_run_that_cannot_show_its_faults_is_refused_naming_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(CityPlanError, match=option):
        CityOptions(**kwargs)


def test_an_episode_is_start_update_end_under_one_key_with_distinct_valid_jpegs() -> None:
    jpeg = b"\xff\xd8\xff\xe0frame\xff\xd9"
    episode = make_episode("d1-edge-1", "cam-2", 7, jpeg)
    assert [e.phase for e in episode.events] == [Phase.START, Phase.UPDATE, Phase.END]
    assert {e.incident_key for e in episode.events} == {episode.incident_key}
    assert len(episode.blobs) == 2 and all(b.startswith(jpeg) for b in episode.blobs.values())
    messages = episode.messages()
    events = [HazardEvent.model_validate_json(m.payload) for m in messages if m.kind == "event"]
    assert [e.event_id for e in events] == [e.event_id for e in episode.events]
    # each blob goes out before the event that names it, keyed by its sha256 for central's receipt
    assert [m.kind for m in messages] == ["snapshot", "event", "snapshot", "event", "event"]
    assert {m.key for m in messages if m.kind == "snapshot"} == set(episode.blobs)
