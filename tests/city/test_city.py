"""The city layout on one machine, broken four ways in one run (`sharpeyes city` at full size).

Real parts only: two district Mosquittos bridged (deploy/city/mosquitto-district-bridge.conf) to a
core Mosquitto with a standby core as the second address; three `central ingest` workers on
lease-held client-id slots, subscribed through both cores; two `central serve --no-ingest`
processes (API, deadline scheduler by lease, statistics through the replica); PostgreSQL 15
primary and streaming replica; SeaweedFS's S3 for evidence; four edges writing 2,100 events with
footage JPEGs into their real outboxes, delivered by the edge's real publisher with receipts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sharpeyes.city.plan import PHASES, CityOptions
from sharpeyes.city.scenario import run_city


@pytest.mark.timeout(900)
def test_the_city_loses_and_duplicates_nothing_through_four_faults(shared_media: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    opts = CityOptions(events=2100, edges=4, seconds=90)
    result = run_city(opts, shared_media, tmp_path / "city", progress=lines.append)
    report = "\n".join([*lines, *(f"{'ok' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in result.checks),
                        *(str(row) for row in result.phases)])
    print(report)  # the per-fault table, in the test log

    assert [row.phase for row in result.phases] == list(PHASES)
    assert sum(row.written for row in result.phases) >= 2000
    for row in result.phases:
        assert row.written > 0, report
        assert (row.lost, row.duplicated, row.unreceipted) == (0, 0, 0), report
        assert row.stored == row.written, report
    failed = [check for check in result.checks if not check.ok]
    assert not failed, report
    names = {check.name for check in result.checks}
    for expected in ("every event stored exactly once", "every blob in S3 once, under its sha256",
                     "deadlines still fire after the lease holder died",
                     "the killed worker's slots were taken over by survivors",
                     "statistics fall back to the primary with the replica stopped, and say so"):
        assert expected in names, report
    assert any(name.startswith("each episode made one correct incident") for name in names), report
