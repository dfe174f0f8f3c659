"""The outside tester's suite: schemathesis against a real central's own OpenAPI document, every
check on (configuration and the reasons for it: tests/central/schemathesis.toml), as nobody, as a
grid worker of each of two grids and as an admin, with a bounded number of examples per route.

Issue 29's runs found 500s (ids past 2**63 - 1, lone surrogates, JSON nested 10,000 deep), a
document that did not say what the routes answer, and 404s where 405s belonged; this keeps them
found. ``SHARPEYES_FUZZ_EXAMPLES`` and ``SHARPEYES_FUZZ_SEED`` widen a run by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis  # noqa: F401 - pinned in the dev lock: a missing one fails here, it never skips

from tests.central.fuzz_central import fuzz_central

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SHARPEYES_FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("SHARPEYES_FUZZ_SEED", "29")
# Anonymous and workers first: the admin's run changes the site (users, grid, zones, silences).
RUNS = (("anonymous", None), ("worker-g3", "worker-g3"), ("worker-g1", "worker-g1"), ("admin", "admin"))


def _schemathesis(base: str, token: str | None, workdir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               f"{base}/api/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", SEED,
               "--workers", "1", "--request-timeout", "10", "--generation-database", "none", "--no-color",
               "--max-failures", "20"]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=280, check=False)


@pytest.mark.timeout(330)
def test_schemathesis_finds_nothing_as_anyone(tmp_path: Path) -> None:
    failed = []
    with fuzz_central(tmp_path) as central:
        assert set(central.incidents) == {"g1", "g3"}  # two grids with incidents, one worker each
        for name, role in RUNS:
            done = _schemathesis(central.base, central.tokens[role] if role else None, tmp_path)
            if done.returncode != 0:
                failed.append(f"--- as {name} (exit {done.returncode}) ---\n{done.stdout[-12000:]}\n{done.stderr[-2000:]}")
    assert not failed, "\n".join(failed)
