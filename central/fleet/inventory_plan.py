"""What an inventory change does, worked out on plain data (no database): which edges get a new
configuration version and why (cameras added, changed, moved in or out, retired), the index row of
each camera, and the checks the database adds to the site file's own validation: camera ids unique
across the site, and stream URLs that carry ``${VAR}`` references, never a password.

An edge's configuration is handled as JSON, as under ``edges:`` in the site file
(``EdgeConfig.model_dump(mode="json")``), like the configuration history (config_history.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from broker.cameraconfig import EdgeConfig
from broker.configbase import describe_errors
from central.workflow.audit import canonical

EdgeData = dict[str, Any]
State = dict[str, EdgeData]  # edge id -> its configuration (active edges only)

# scheme://userinfo@host...: the userinfo is what a URL's credentials are written in.
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/@?#]*)@")
URL_KEYS = ("url", "detect_url")


def literal_credentials(url: str | None) -> bool:
    """Whether URL names a user or password in plain text rather than as a ``${VAR}`` reference
    (the reference is filled in only on the edge that opens the stream)."""
    if not url:
        return False
    found = _USERINFO.match(url)
    return found is not None and "${" not in found.group(1)


def url_fix(camera_id: str) -> str:
    var = "CAM_" + re.sub(r"[^A-Z0-9]", "_", camera_id.upper()) + "_PASSWORD"
    return (f"write it as rtsp://user:${{{var}}}@host/path and set {var} in the environment of the edge that "
            "runs the camera; central stores and sends only the reference")


def url_problems(edge: EdgeData, where: str) -> list[str]:
    """One line per camera URL of EDGE that carries credentials, naming its key (under WHERE) and the fix."""
    problems = []
    for i, camera in enumerate(edge.get("cameras") or []):
        if not isinstance(camera, dict):
            continue
        for key in URL_KEYS:
            if isinstance(camera.get(key), str) and literal_credentials(camera[key]):
                problems.append(f"{where}.cameras[{i}].{key}: the URL carries a user name or password in plain text "
                                f"(fix: {url_fix(str(camera.get('id', i)))})")
    return problems


def validate_edge(data: Any, where: str) -> tuple[EdgeData | None, list[str]]:
    """DATA validated exactly as an entry under ``edges:`` of the site file, plus the URL rule:
    (the configuration as stored, None) or (None, problems naming key and fix under WHERE)."""
    if not isinstance(data, dict):
        return None, [f"{where}: expected a mapping of keys to values (an edge as under edges: in the site file)"]
    problems = url_problems(data, where)
    try:
        edge = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        return None, problems + [f"{where}.{p}" if not p.startswith("(") else f"{where}: {p}"
                                 for p in describe_errors(where, exc).problems]
    return (edge.model_dump(mode="json"), []) if not problems else (None, problems)


def camera_index(camera: EdgeData) -> dict[str, Any]:
    """The inventory index's columns of one camera's configuration."""
    location = camera.get("location") or {}
    return {"name": camera.get("name"), "channel_id": camera.get("gb28181_channel_id"),
            "grid_cell": camera.get("grid_cell"), "url": camera.get("url", ""), "lon": location.get("lon"),
            "lat": location.get("lat"), "model": str(camera.get("model", "yolov8n"))[:200],
            "zones": len(camera.get("zones") or [])}


def cameras_of(edge: EdgeData | None) -> dict[str, EdgeData]:
    return {c["id"]: c for c in (edge or {}).get("cameras", [])}


def duplicate_cameras(state: State) -> list[str]:
    """A line per camera id that two edges of STATE both run (ids are unique across a site: incidents,
    silences and the console name a camera by its id alone)."""
    seen: dict[str, str] = {}
    problems = []
    for edge_id in sorted(state):
        for camera_id in cameras_of(state[edge_id]):
            if camera_id in seen:
                problems.append(f"camera {camera_id!r} is on edge {seen[camera_id]!r} and on edge {edge_id!r} "
                                "(fix: give one of them another id, or move it: a camera runs on one edge)")
            else:
                seen[camera_id] = edge_id
    return problems


@dataclass
class EdgePlan:
    """One edge's next version and what it changes against the version before."""

    edge: str
    config: EdgeData
    new_edge: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved_in: list[str] = field(default_factory=list)  # "camera (from edge)"
    moved_out: list[str] = field(default_factory=list)  # "camera (to edge)"
    retired: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        parts = [("new edge", [] if not self.new_edge else [self.edge]), ("added", self.added),
                 ("changed", self.changed), ("moved in", self.moved_in), ("moved out", self.moved_out),
                 ("retired", self.retired), ("edge settings", self.settings)]
        return [f"{what}: {', '.join(names)}" for what, names in parts if names and what != "new edge"] + (
            ["new edge"] if self.new_edge else [])


@dataclass
class Plan:
    edges: list[EdgePlan]
    unchanged: list[str]

    @property
    def retired(self) -> list[str]:
        return sorted(c for e in self.edges for c in e.retired)

    @property
    def moved(self) -> list[str]:
        return sorted(m.split(" ")[0] for e in self.edges for m in e.moved_in)

    def counts(self) -> dict[str, int]:
        return {"edges": len(self.edges), "added": sum(len(e.added) for e in self.edges),
                "changed": sum(len(e.changed) for e in self.edges), "moved": len(self.moved),
                "retired": len(self.retired), "unchanged_edges": len(self.unchanged)}


def plan(current: State, incoming: State) -> Plan:
    """The versions that make INCOMING's edges what it says, each replacing that edge's whole
    configuration; edges INCOMING does not name stay as they are, except one that loses a camera
    moved to an edge INCOMING names. A camera that leaves an edge for no other edge is retired."""
    where_now = {c: e for e, data in current.items() for c in cameras_of(data)}
    where_next = {c: e for e, data in incoming.items() for c in cameras_of(data)}
    result: State = {**current, **incoming}
    # An edge the import does not name loses the cameras moved from it to one it does.
    for camera, edge in where_next.items():
        source = where_now.get(camera)
        if source is not None and source != edge and source not in incoming:
            data = result[source]
            result[source] = {**data, "cameras": [c for c in data.get("cameras", []) if c["id"] != camera]}
    edges, unchanged = [], []
    for edge_id in sorted(result):
        before, after = current.get(edge_id), result[edge_id]
        if before is not None and canonical(before) == canonical(after):
            if edge_id in incoming:
                unchanged.append(edge_id)
            continue
        old, new = cameras_of(before), cameras_of(after)
        step = EdgePlan(edge_id, after, new_edge=before is None)
        for camera in new:
            source = where_now.get(camera)
            if camera in old:
                if canonical(old[camera]) != canonical(new[camera]):
                    step.changed.append(camera)
            elif source is not None and source != edge_id:
                step.moved_in.append(f"{camera} (from {source})")
            else:
                step.added.append(camera)
        for camera in old:
            if camera not in new:
                target = where_next.get(camera)
                if target is not None and target != edge_id:
                    step.moved_out.append(f"{camera} (to {target})")
                else:
                    step.retired.append(camera)
        if before is not None:
            step.settings = sorted(k for k in {*before, *after} - {"cameras", "id"} if before.get(k) != after.get(k))
        edges.append(step)
    return Plan(edges, unchanged)


def next_state(current: State, steps: Plan) -> State:
    return {**current, **{e.edge: e.config for e in steps.edges}}
