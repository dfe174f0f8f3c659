"""`sharpeyes bench worker-death`'s table and checks, on made-up figures (the run itself takes minutes
of real parts; docs/reliability.md has its measured table)."""

from __future__ import annotations

import json

import pytest

from sharpeyes.bench.worker_death import Options, PhaseFigures, WayResult, WorkerDeathError, markdown, run, to_json


def test_the_table_has_a_row_per_way_with_broker_loss_from_the_run_without_receipts() -> None:
    slots = WayResult("slots", PhaseFigures(False, published=2000, stored=2000, flows_again_s=6.5),
                      PhaseFigures(True, published=2000, stored=2000, p50_s=0.3, p99_s=6.9, max_s=7.2, resends=0))
    short = WayResult("short", PhaseFigures(False, published=2000, stored=1987),
                      PhaseFigures(True, published=2000, stored=2000, duplicates=2, p50_s=0.3, p99_s=0.6, max_s=31.0,
                                   resends=1, notes=["one resend round"]))
    table = markdown([slots, short], Options())
    assert "| slots | 0 of 2000 | 2000 of 2000 | 0 | 6.50 | 0.30 / 6.90 / 7.20 | 0 |" in table
    assert "| short | 13 of 2000 | 2000 of 2000 | 2 | never | 0.30 / 0.60 / 31.00 | 1 |" in table
    assert "- short (receipts): one resend round" in table
    rows = json.loads(to_json([slots, short]))
    assert rows[1]["lost_at_broker"] == 13 and rows[1]["phases"]["receipts"]["resends"] == 1


@pytest.mark.parametrize(("opts", "says"), [(Options(ways=("nope",)), "--ways"), (Options(workers=1), "--workers")])
def test_bad_options_are_refused_before_anything_starts(opts: Options, says: str) -> None:
    with pytest.raises(WorkerDeathError, match=says):
        run(opts, progress=lambda _text: None)
