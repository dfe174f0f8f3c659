"""What an edge reports of its configuration (edge/config_state.py), on a real outbox file: the
number central gave what it runs, kept across a restart with the same configuration and dropped
with another one (an old site file), refusals until a later version runs, and nothing reported
before a central that numbers configurations has spoken."""

from __future__ import annotations

from pathlib import Path

from edge.config_state import ConfigState
from edge.outbox import Outbox

H5, H6, H7 = "000000000005", "000000000006", "00000000000f"


def test_nothing_is_reported_until_central_numbers_a_configuration(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    state = ConfigState(outbox, H5)
    assert state.report() is None
    state.offered(H6, None)  # an older central's command: no number, no report
    assert state.report() is None
    state.offered(H5, 5)  # the running configuration is version 5
    report = state.report()
    assert report is not None and (report.applied.version, report.applied.hash, report.refused) == (5, H5, None)


def test_the_number_survives_a_restart_with_the_same_configuration_only(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    state = ConfigState(outbox, H5)
    state.offered(H6, 6)
    state.applied(H6)
    first = state.report()
    assert first is not None and first.applied.version == 6
    outbox.close()

    again = ConfigState(Outbox(tmp_path / "outbox.db"), H6)
    report = again.report()
    assert report is not None and report.applied.version == 6
    assert report.applied.since.replace(microsecond=0) == first.applied.since.replace(microsecond=0)

    old_file = ConfigState(Outbox(tmp_path / "outbox.db"), H5)  # restarted with an old site file
    report = old_file.report()
    assert report is not None and (report.applied.version, report.applied.hash) == (None, H5)


def test_a_refusal_is_reported_until_that_version_or_a_later_one_runs(tmp_path: Path) -> None:
    changes: list[int] = []
    state = ConfigState(Outbox(tmp_path / "outbox.db"), H5, on_change=lambda: changes.append(1))
    state.offered(H5, 5)
    state.refused(H6, 6, ["cameras c1: model nope: not registered"])
    report = state.report()
    assert report is not None and report.refused is not None
    assert (report.applied.version, report.refused.version, report.refused.problems) == (
        5, 6, ["cameras c1: model nope: not registered"])
    state.applied(H5)  # SIGHUP with the same file: still refused
    assert state.report().refused is not None  # type: ignore[union-attr]
    state.offered(H7, 7)
    state.applied(H7)
    report = state.report()
    assert report is not None and report.refused is None and report.applied.version == 7
    assert changes  # each change is published at once, not at the next heartbeat


def test_a_command_is_answered_once(tmp_path: Path) -> None:
    state = ConfigState(Outbox(tmp_path / "outbox.db"), H5)
    assert state.answered("c-1") and not state.answered("c-1") and state.answered("c-2")
