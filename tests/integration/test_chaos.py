"""The fault suite at a small scale (`sharpeyes chaos --json` runs it at 2,000 events per scenario):
every scenario on real parts ends with nothing lost and nothing filed twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharpeyes.chaos.scenarios import SCENARIOS, ChaosOptions, run_scenario


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_loses_nothing_and_files_nothing_twice(name: str, tmp_path: Path) -> None:
    result = run_scenario(name, ChaosOptions(events=100, receipt_timeout_s=2.0, partition_s=3.0, workdir=tmp_path))
    assert result.published == 100
    assert (result.stored, result.lost, result.duplicated) == (100, 0, 0), result
    if name == "refused_publish":
        assert result.extra["refusal"] == "not authorized (0x87): check the ACL for edge-1"
    if name == "edge_disk_full":
        assert result.extra["disk_full_writes"] > 0 and result.extra["dropped"]["snapshot"] > 0
        assert result.extra["dropped"]["event"] == 0
