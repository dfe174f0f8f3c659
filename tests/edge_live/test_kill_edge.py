"""`kill -9` of an edge holding undelivered events: after the restart, everything that was in its
outbox reaches the broker, in order. Real edge process, real stream, real broker."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from sharpeyes.rtsp_server import FootageServer
from tests.edge_live.support import Recorder
from tests.support import spawn_sharpeyes, wait_until


def _pending(outbox: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(outbox) as db:
        return [(t, bytes(p)) for t, p in db.execute("SELECT topic, payload FROM outbox ORDER BY id")]


def _events_pending(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    try:
        return sum(1 for t, _ in _pending(outbox) if t.endswith("/event"))
    except sqlite3.OperationalError:  # the edge is still creating its schema
        return 0


def _spawn_edge(config: Path, outbox: Path, log: Path) -> subprocess.Popen:
    return spawn_sharpeyes(["edge", "run", "--config", str(config), "--edge", "e1", "--outbox", str(outbox)], log)


@pytest.mark.timeout(180)
def test_kill_9_with_a_full_outbox_delivers_everything_after_restart(fresh_mosquitto, shared_media, tmp_path):
    with FootageServer({"street.mp4": shared_media / "street_parked_cars_720p.mp4"}, workdir=tmp_path / "rtsp") as rtsp:
        config = tmp_path / "site.yaml"
        config.write_text(yaml.safe_dump({
            "site": "t",
            "broker": {"host": "127.0.0.1", "port": fresh_mosquitto.port},
            "edges": [{"id": "e1", "cameras": [{
                "id": "cam", "url": rtsp.url("street.mp4"), "detect_fps": 1, "decode": "all", "clip_post_s": 1,
                "zones": [{"id": "kerb", "kind": "fire_lane", "dwell_s": 2, "realarm_s": 3,
                           "polygon": [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]]}],
            }]}],
        }))
        outbox, log = tmp_path / "var" / "outbox.db", tmp_path / "edge.log"
        fresh_mosquitto.stop()  # the broker is down: everything the edge raises waits in its outbox
        edge = _spawn_edge(config, outbox, log)
        try:
            wait_until(lambda: _events_pending(outbox) >= 3, 90, what=f"events in the outbox\n{log.read_text()[-2000:]}")
            os.kill(edge.pid, signal.SIGKILL)
            edge.wait(10)
            pending = _pending(outbox)
            assert sum(1 for t, _ in pending if "/evidence/" in t) >= 2

            fresh_mosquitto.start()
            recorder = Recorder(fresh_mosquitto.port, "sharpeyes/v1/t/e1/#")
            edge = _spawn_edge(config, outbox, log)
            try:
                expected = [p for t, p in pending]

                def delivered() -> bool:
                    got = [m for _, m in recorder.messages]
                    return all(any(_same(m, e) for m in got) for e in expected)

                wait_until(delivered, 60, what="every message from before the kill delivered")
                order = [next(i for i, (_, m) in enumerate(recorder.messages) if _same(m, e)) for e in expected]
                assert order == sorted(order), "outbox messages must arrive in the order they were written"
            finally:
                recorder.close()
        finally:
            if edge.poll() is None:
                edge.terminate()
                edge.wait(15)


def _same(received, payload: bytes) -> bool:
    """The recorder decodes JSON payloads; compare like with like."""
    if isinstance(received, bytes):
        return received == payload
    try:
        return received == json.loads(payload)
    except ValueError:
        return False
