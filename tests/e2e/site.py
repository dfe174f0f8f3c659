"""A running site for the browser tests: central and an edge as real processes, on real footage."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.support import spawn_sharpeyes, start_central, stop_process

SITE = "e2e"
EDGE = "edge-e2e"
STREET = "street"
KERB_ZONE = "near-kerb"
# The near kerb, where a row of cars stays parked for the whole clip (configs/cameras/street-parked.yaml).
KERB = [[0.05, 0.74], [0.95, 0.74], [0.95, 0.90], [0.05, 0.90]]
# The driving lane of the same clip: cars pass, none stays, so a re-check there finds the lane clear.
DRIVING_LANE = [[0.25, 0.62], [0.80, 0.60], [0.80, 0.70], [0.25, 0.72]]

PASSWORDS = {
    "admin": "pw-admin-e2e",
    "monitor": "pw-monitor-e2e",
    "wang-fang": "pw-worker-e2e",
}


def site_config(mqtt_port: int, street_url: str) -> dict:
    return {
        "site": SITE,
        "name": "端到端测试小区 E2E compound",
        "broker": {"host": "127.0.0.1", "port": mqtt_port, "protocol": "5"},
        "edges": [
            {
                "id": EDGE,
                "cameras": [
                    {
                        "id": STREET,
                        "url": street_url,
                        "detect_fps": 1,
                        "grid_cell": "110101001001",
                        "clip_pre_s": 2,
                        "clip_post_s": 2,
                        "zones": [
                            {"id": KERB_ZONE, "kind": "fire_lane", "polygon": KERB, "dwell_s": 4, "clear_s": 8, "realarm_s": 600}
                        ],
                    }
                ],
            }
        ],
        "grid": [
            {"code": "110101", "name": "东华门街道", "level": "street"},
            {"code": "110101001", "name": "多福巷社区", "level": "community", "parent": "110101"},
            {"code": "110101001001", "name": "第一网格", "level": "grid", "parent": "110101001", "workers": ["wang-fang"]},
        ],
        "workers": [{"id": "wang-fang", "name": "王芳"}],
        "users": [
            {"username": "admin", "role": "admin", "password": PASSWORDS["admin"]},
            {"username": "monitor", "role": "monitor", "password": PASSWORDS["monitor"]},
            {"username": "wang-fang", "role": "grid_worker", "worker": "wang-fang", "password": PASSWORDS["wang-fang"]},
        ],
    }


@dataclass
class RunningSite:
    base_url: str
    workdir: Path
    central: subprocess.Popen
    edge: subprocess.Popen
    # How they were started, so a test can stop and start them again (same database, same site file).
    central_args: list[str] = field(default_factory=list)
    edge_args: list[str] = field(default_factory=list)

    def token(self, username: str) -> str:
        res = httpx.post(f"{self.base_url}/api/v1/auth/token", data={"username": username, "password": PASSWORDS[username]})
        res.raise_for_status()
        return res.json()["access_token"]

    def get(self, path: str, username: str = "admin") -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token(username)}"}, timeout=10)

    def logs(self) -> str:
        parts = []
        for name in ("central.log", "edge.log"):
            path = self.workdir / name
            parts.append(f"--- {name} ---\n" + (path.read_text(errors="replace")[-3000:] if path.exists() else "(none)"))
        return "\n".join(parts)

    def wait_for_incident(self, hazard: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for incident in self.get("/api/v1/incidents").json()["items"]:
                if incident["hazard"] == hazard and incident["latest_snapshot_sha256"]:
                    return incident
            time.sleep(1)
        raise AssertionError(f"no {hazard} incident within {timeout:.0f} s\n{self.logs()}")

    def wait_for_evidence(self, incident_id: int, content_type: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.get(f"/api/v1/incidents/{incident_id}").json()["evidence"]:
                if item["content_type"] == content_type and item["available"]:
                    return item
            time.sleep(1)
        raise AssertionError(f"no {content_type} evidence on incident {incident_id} within {timeout:.0f} s\n{self.logs()}")

    def restart_central(self) -> None:
        """Stop central and start it again on the same database with the same site file (a new port:
        base_url changes, and tokens issued before do not survive the demo's generated key)."""
        stop_process(self.central)
        self.central, self.base_url = start_central(self.central_args, self.workdir / "central.log")

    def stop_edge(self) -> None:
        stop_process(self.edge)

    def start_edge(self) -> None:
        if self.edge.poll() is None:
            return
        self.edge = spawn_sharpeyes(self.edge_args, self.workdir / "edge.log")

    def stop(self) -> None:
        stop_process(self.edge)
        stop_process(self.central)


# The centre reviews fire-lane alerts itself (no auto-registration) and dispatches by hand.
WORKFLOW = {
    "hazards": {"fire_lane_blocked": {"auto_register_score": None}},
    "auto_dispatch": False,
    "scheduler_interval_s": 2,
}


def start_site(workdir: Path, mqtt_port: int, street_url: str, *, workflow: dict | None = None) -> RunningSite:
    config = workdir / "site.yaml"
    config.write_text(yaml.safe_dump(site_config(mqtt_port, street_url), allow_unicode=True))
    extra = []
    if workflow is not None:
        (workdir / "workflow.yaml").write_text(yaml.safe_dump(workflow, allow_unicode=True))
        extra = ["--workflow", str(workdir / "workflow.yaml")]
    central_args = ["--config", str(config), "--database-url", f"sqlite:///{workdir}/central.db",
                    "--evidence-dir", str(workdir / "evidence"), *extra]
    central, base = start_central(central_args, workdir / "central.log")
    edge_args = ["edge", "run", "--config", str(config), "--edge", EDGE, "--outbox", str(workdir / "outbox.db")]
    edge = spawn_sharpeyes(edge_args, workdir / "edge.log")
    return RunningSite(base, workdir, central, edge, central_args, edge_args)
