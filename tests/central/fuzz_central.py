"""A real central on a free port for the outside tester (schemathesis): the workflow site on SQLite,
--demo (anonymous Open311 and docs, as the issue's runs had), seeded with incidents in two grids.

``python -m tests.central.fuzz_central`` serves one by hand and prints its URL and tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from broker.topics import event_topic, evidence_topic
from tests.central.factories import EDGE, SITE, T0, WF_PASSWORD, event, jpeg_bytes, sha, wire, workflow_config, workflow_site

# Who the fuzzer runs as: an admin, a grid worker of g1 and one of g3 (another community).
ROLES = {"admin": "admin", "worker-g1": "wang", "worker-g3": "chen"}


@dataclass
class FuzzCentral:
    base: str
    tokens: dict[str, str]  # role name above -> bearer token
    incidents: dict[str, list[int]]  # grid cell -> incident ids


def _seed(central: object) -> dict[str, list[int]]:
    from sqlalchemy import select

    from central.ingest.service import IngestService
    from central.store.tables import Incident
    from central.workflow.routing import GridRouter

    c = central
    cameras = {"g1": "street-north", "g3": "gate"}
    with c.ctx.sessions() as session:  # type: ignore[attr-defined]
        service = IngestService(session, c.ctx.evidence, GridRouter(workflow_site()), c.workflow)  # type: ignore[attr-defined]
        for cell, camera in cameras.items():
            for n in range(3):
                snapshot = jpeg_bytes(f"fuzz-{cell}-{n}")
                service.handle(event_topic(SITE, EDGE), wire(event(f"fuzz-{cell}-{n}", camera=camera, zone=f"zone-{n}", snapshot=snapshot,
                                                                  started_at=T0)))
                service.handle(evidence_topic(SITE, EDGE, sha(snapshot)), snapshot)
        rows = session.execute(select(Incident.grid_cell, Incident.id)).all()
    out: dict[str, list[int]] = {}
    for cell, incident_id in rows:
        out.setdefault(cell, []).append(incident_id)
    return out


@contextmanager
def fuzz_central(tmp_path: Path) -> Iterator[FuzzCentral]:
    import uvicorn

    from broker.netutil import free_port
    from central.server import build_central

    # Open311's per-address limit would answer most of the fuzzer's reports with 429 (declared, but
    # then the intake itself goes untested); a real limit stays, far above what a run sends.
    workflow = workflow_config(open311={"rate_per_minute": 100_000})
    central = build_central(workflow_site(), f"sqlite:///{tmp_path / 'central.db'}", tmp_path / "evidence",
                            tmp_path / "var", ingest=False, workflow=workflow, demo=True)
    incidents = _seed(central)
    # The live stream (/api/v1/stream) lasts until central closes; as closing, it says hello and
    # ends, so a fuzzer's request gets a whole answer to check instead of a timeout.
    central.ctx.closing.set()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(central.app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("central did not start")
        time.sleep(0.05)
    tokens = {}
    for role, username in ROLES.items():
        res = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": WF_PASSWORD})
        res.raise_for_status()
        tokens[role] = res.json()["access_token"]
    try:
        yield FuzzCentral(base, tokens, incidents)
    finally:
        server.should_exit = True
        thread.join(10)
        central.close()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, fuzz_central(Path(tmp)) as fc:
        print(fc.base, fc.incidents, flush=True)
        for role, token in fc.tokens.items():
            print(role, token, flush=True)
        while True:
            time.sleep(3600)
