"""`sharpeyes demo --smoke`: wait until both demo hazards are incidents (read through the REST API)
and the lift door was held, or say after the deadline what is missing."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from broker.childproc import Child
from sharpeyes.demo.layout import RELAY_COIL, DemoError, DemoLayout, DemoPorts, demo_credentials
from sharpeyes.demo.printing import say

REQUIRED_HAZARDS = ("fire_lane_blocked", "ebike_indoor")
SMOKE_DEADLINE_S = 180.0
SMOKE_USER = "monitor"


def incident_items(payload: Any) -> list[dict[str, Any]]:
    """Incidents from GET /api/v1/incidents: a bare list, or a page object with `items`."""
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        payload = payload["items"]
    if not isinstance(payload, list):
        raise DemoError(f"GET /api/v1/incidents returned {type(payload).__name__}, not a list of incidents")
    return [item for item in payload if isinstance(item, dict)]


def missing_hazards(incidents: Iterable[Mapping[str, Any]], required: Sequence[str] = REQUIRED_HAZARDS) -> list[str]:
    seen = {str(item.get("hazard")) for item in incidents}
    return [hazard for hazard in required if hazard not in seen]


def describe_incident(item: Mapping[str, Any]) -> str:
    fields = ("id", "hazard", "camera", "zone", "state", "condition", "started_at", "assigned_worker")
    return "  ".join(f"{key}={item[key]}" for key in fields if item.get(key) is not None)


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None

    def login(self, username: str, password: str) -> None:
        body = urllib.parse.urlencode({"username": username, "password": password}).encode()
        request = urllib.request.Request(f"{self.base_url}/api/v1/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as response:
            self.token = json.load(response)["access_token"]

    def incidents(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{self.base_url}/api/v1/incidents?limit=500",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return incident_items(json.load(response))



class RunningDemo(Protocol):
    """What the smoke check watches while it waits: the children, the door and the stop request."""

    layout: DemoLayout
    deadline_s: float
    stop_requested: threading.Event

    def dead_child(self) -> Child | None: ...
    def door_held(self) -> bool: ...
    def log_tails(self, lines: int = ...) -> str: ...


def wait_smoke(run: RunningDemo, ports: DemoPorts, started: float) -> int:
    """The exit status: 0 when both hazards are incidents and the door was held, 1 on failure, 130 on Ctrl-C."""
    api = ApiClient(f"http://127.0.0.1:{ports.http}")
    password = next((c.password for c in demo_credentials(run.layout.root / run.layout.config)
                     if c.username == SMOKE_USER), None)
    if password is None:
        raise DemoError(f"configs/demo.yaml has no user {SMOKE_USER!r} for the smoke check")
    incidents: list[dict[str, Any]] = []
    last_error = ""
    while time.monotonic() - started < run.deadline_s:
        if run.stop_requested.wait(3.0):
            say("interrupted")
            return 130
        dead = run.dead_child()
        if dead is not None:
            say(f"SMOKE FAILED: {dead.name} exited with status {dead.returncode}")
            print(run.log_tails(), flush=True)
            return 1
        try:
            if api.token is None:
                api.login(SMOKE_USER, password)
            incidents = api.incidents()
            last_error = ""
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            last_error = str(exc)
            api.token = None if isinstance(exc, urllib.error.HTTPError) and exc.code == 401 else api.token
            continue
        if not missing_hazards(incidents) and run.door_held():
            say(f"SMOKE OK after {time.monotonic() - started:.0f} s: {len(incidents)} incident(s)")
            for item in incidents:
                print(f"  {describe_incident(item)}", flush=True)
            return 0
    missing = missing_hazards(incidents)
    problems = [f"no {' or '.join(missing)} incident"] if missing else []
    if not run.door_held():
        problems.append(f"the lift door was never held (relay coil {RELAY_COIL} never set)")
    say(f"SMOKE FAILED after {run.deadline_s:.0f} s: {'; '.join(problems)} "
        f"({len(incidents)} incident(s) seen: {sorted({str(i.get('hazard')) for i in incidents})})"
        + (f"; last API error: {last_error}" if last_error else ""))
    print(run.log_tails(), flush=True)
    return 1
