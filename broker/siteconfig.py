"""Site configuration: one YAML file describing a site's edges, cameras, zones, grid and people.

It belongs to the contract because both sides read it, and central pushes each edge its own part
of it (``cmd/config``, broker/edgeconfig.py). Validation happens once, at start-up, and every error
names the file, the key and a fix. The parts live by concern: zones and camera rules
(broker/zoneconfig.py), cameras and edges (broker/cameraconfig.py), actuators
(broker/actuatorconfig.py), the broker connection (broker/connectionconfig.py), and what they all
share (broker/configbase.py); this module holds the grid, people and the site, and loads files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from broker.cameraconfig import CameraConfig, EdgeConfig
from broker.centrallink import CentralLink
from broker.configbase import ConfigError, Id, StrictModel, describe_errors, expand_env, read_yaml, require_unique
from broker.connectionconfig import BrokerConfig
from broker.zoneconfig import CameraRules


class WorkerConfig(StrictModel):
    id: Id
    name: str
    phone: str | None = None


class GridCellConfig(StrictModel):
    code: str = Field(min_length=1, max_length=64)
    name: str
    level: str = "grid"
    parent: str | None = None
    workers: list[str] = Field(default_factory=list, description="ids of the workers responsible")
    area: list[tuple[float, float]] | None = Field(
        None, description="boundary [[lon, lat], ...] (WGS84): routes located reports (Open311) to this cell"
    )


class UserConfig(StrictModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    role: Literal["admin", "monitor", "supervisor", "grid_chief", "grid_worker", "unit"]
    password_env: str | None = None
    password: str | None = Field(None, description="for demos only; production uses password_env")
    worker: str | None = None
    grid: list[str] = Field(default_factory=list, description="grid node codes whose subtree this user covers")
    unit: str | None = Field(None, description="the unit (property company, department) a unit user acts for")

    def secret(self) -> str | None:
        if self.password_env:
            return os.environ.get(self.password_env)
        return self.password


class SiteConfig(StrictModel):
    site: Id
    name: str = ""
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    central: CentralLink | None = Field(None, description="central over HTTP(S): where edges fetch their models")
    edges: list[EdgeConfig] = Field(default_factory=list)
    grid: list[GridCellConfig] = Field(default_factory=list)
    workers: list[WorkerConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> SiteConfig:
        require_unique([e.id for e in self.edges], "edge id")
        require_unique([g.code for g in self.grid], "grid cell code")
        require_unique([w.id for w in self.workers], "worker id")
        codes = {g.code for g in self.grid}
        workers = {w.id for w in self.workers}
        for cell in self.grid:
            if cell.parent is not None and cell.parent not in codes:
                raise ValueError(f"grid cell {cell.code!r} has parent {cell.parent!r}, which is not a grid cell code")
            for worker in cell.workers:
                if worker not in workers:
                    raise ValueError(f"grid cell {cell.code!r} names worker {worker!r}; add it under workers:")
        for edge in self.edges:
            for camera in edge.cameras:
                if camera.grid_cell is not None and camera.grid_cell not in codes:
                    raise ValueError(
                        f"camera {camera.id!r} is mapped to grid cell {camera.grid_cell!r}; add it under grid:"
                    )
        return self

    def edge(self, edge_id: str) -> EdgeConfig:
        for edge in self.edges:
            if edge.id == edge_id:
                return edge
        known = ", ".join(e.id for e in self.edges) or "none"
        raise KeyError(f"edge {edge_id!r} is not in site {self.site!r} (edges: {known})")

    def camera(self, camera_id: str) -> tuple[EdgeConfig, CameraConfig] | None:
        for edge in self.edges:
            for camera in edge.cameras:
                if camera.id == camera_id:
                    return edge, camera
        return None


# Keys whose ${VAR} references are kept as written at load: camera URLs carry credentials, which
# only the edge that opens the stream fills in (CameraConfig.stream_url); central never needs them.
_KEPT_REFERENCES = re.compile(r"^edges\[\d+\]\.cameras\[\d+\]\.url$")


def _load(path: Path | str, model: type[BaseModel]) -> Any:
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["(top level): expected a mapping of keys to values"])
    data = expand_env(data, str(path), keep=_KEPT_REFERENCES if model is SiteConfig else None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe_errors(path, exc) from None


def load_site_config(path: Path | str) -> SiteConfig:
    return _load(path, SiteConfig)


def load_camera_rules(path: Path | str) -> CameraRules:
    return _load(path, CameraRules)


def parse_site_config(data: dict[str, Any], source: str = "<command>") -> SiteConfig:
    """Validate a configuration received as data (the ``config`` command)."""
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise describe_errors(source, exc) from None
