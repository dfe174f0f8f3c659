"""One logging set-up for every process: text by default, JSON lines for a log shipper."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from broker.logsetup import setup_logging
from tests.support import PROJECT_ROOT


@pytest.fixture(autouse=True)
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_level_module_message_extras_and_the_exception() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    log = logging.getLogger("edge.node")
    log.info("edge %s running %d cameras", "edge-1", 2, extra={"site": "demo"})
    try:
        raise RuntimeError("relay module unreachable")
    except RuntimeError:
        log.exception("actuator failed")
    logging.getLogger("pymodbus.logging").info("Server listening.")  # a chatty library stays quiet
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["level"], first["logger"], first["msg"], first["site"]) == ("INFO", "edge.node", "edge edge-1 running 2 cameras", "demo")
    assert first["ts"].endswith("Z")
    assert second["level"] == "ERROR" and "RuntimeError: relay module unreachable" in second["exc"]


def test_text_is_the_default_and_a_wrong_format_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("SHARPEYES_LOG_FORMAT", raising=False)
    out = io.StringIO()
    setup_logging("WARNING", stream=out)
    logging.getLogger("central.ingest").warning("dead letter on %s", "t")
    assert out.getvalue().rstrip().endswith("WARNING central.ingest: dead letter on t")
    with pytest.raises(ValueError, match="use text or json"):
        setup_logging("INFO", "yaml")


def test_a_real_process_logs_json_lines_when_asked(shared_media: Path) -> None:
    env = dict(os.environ, SHARPEYES_LOG_FORMAT="json")
    result = subprocess.run([sys.executable, "-m", "sharpeyes", "edge", "replay", str(shared_media / "elevator_escooter_20s.mp4"),
                             "--camera-config", "configs/cameras/elevator.yaml"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records and {"models.detector", "edge.replay"} <= {r["logger"] for r in records}
    assert json.loads(result.stdout.splitlines()[0])["hazard"] == "ebike_indoor"  # events stay on stdout
