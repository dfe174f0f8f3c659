"""Site configuration: one YAML file describing a site's edges, cameras, zones, grid and people.

It belongs to the contract because central pushes it to edges (``cmd/config``) and both sides
read it. Validation happens once, at start-up, and every error names the file, the key and a fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from broker.payloads import HazardKind
from broker.topics import ID_PATTERN

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$", max_length=64)]

ZoneKind = Literal["fire_lane", "indoor"]

# The design's defaults per zone kind: (dwell_s, clear_s, realarm_s).
ZONE_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "fire_lane": (120.0, 30.0, 300.0),
    "indoor": (2.0, 10.0, 300.0),
}
ZONE_HAZARD: dict[str, HazardKind] = {
    "fire_lane": HazardKind.FIRE_LANE_BLOCKED,
    "indoor": HazardKind.EBIKE_INDOOR,
}
# COCO labels each zone kind reacts to with the default model.
ZONE_LABELS: dict[str, tuple[str, ...]] = {
    "fire_lane": ("car", "truck", "bus", "motorcycle"),
    "indoor": ("motorcycle", "bicycle"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ZoneConfig(_Strict):
    id: Id
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(description="vertices [x, y] normalised to 0..1")
    dwell_s: float | None = Field(None, ge=0)
    clear_s: float | None = Field(None, ge=0)
    realarm_s: float | None = Field(None, gt=0)
    min_score: float = Field(0.35, ge=0.0, le=1.0)
    labels: list[str] | None = None

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(points) < 3:
            raise ValueError("a zone polygon needs at least 3 points [x, y]")
        for x, y in points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(
                    f"point [{x}, {y}] is outside 0..1; coordinates are fractions of the image "
                    "width and height"
                )
        poly = Polygon(points)
        if not poly.is_valid:
            raise ValueError(
                f"polygon is not simple ({explain_validity(poly)}); list its corners in order "
                "around the edge so that no two sides cross"
            )
        if poly.area <= 0:
            raise ValueError("polygon has no area; its points must not all lie on one line")
        return points

    @model_validator(mode="after")
    def _fill_defaults(self) -> "ZoneConfig":
        dwell, clear, realarm = ZONE_DEFAULTS[self.kind]
        if self.dwell_s is None:
            self.dwell_s = dwell
        if self.clear_s is None:
            self.clear_s = clear
        if self.realarm_s is None:
            self.realarm_s = realarm
        if self.labels is None:
            self.labels = list(ZONE_LABELS[self.kind])
        return self

    @property
    def hazard(self) -> HazardKind:
        return ZONE_HAZARD[self.kind]


class CameraRules(_Strict):
    """What the pipeline needs to watch one camera: the file given to ``edge replay``."""

    zones: list[ZoneConfig] = Field(default_factory=list)
    detect_fps: float = Field(1.0, gt=0, le=30)
    model: str = "yolov8n"

    @field_validator("zones")
    @classmethod
    def _unique_zone_ids(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        _require_unique([z.id for z in zones], "zone id")
        return zones


class TamperConfig(_Strict):
    """When a camera counts as tampered with; see edge/tamper.py for what each measure means."""

    enabled: bool = True
    covered_max_std: float = Field(6.0, ge=0, description="grey-level spread below this: lens covered")
    min_sharpness_ratio: float = Field(
        0.2, ge=0, le=1, description="sharpness below this share of the reference view's: defocused"
    )
    min_similarity: float = Field(0.6, ge=-1, le=1, description="edge similarity to the reference below this: turned away")
    dwell_s: float = Field(10.0, ge=0, description="how long the condition must last before it is reported")
    clear_s: float = Field(10.0, ge=0)
    reference_image: str | None = Field(None, description="image captured when the zones were drawn")


class CameraConfig(CameraRules):
    id: Id
    url: str = Field(description="rtsp://user:pass@host/path; ${VAR} is taken from the environment")
    grid_cell: str | None = None
    gb28181_channel_id: Annotated[str, Field(pattern=r"^\d{20}$")] | None = None
    decode: Literal["auto", "all", "keyframes"] = Field(
        "auto", description="auto: keyframes only when every zone is a slow (fire lane) zone"
    )
    offline_s: float = Field(60.0, gt=0, description="no frames for this long raises camera_offline")
    tamper: TamperConfig = Field(default_factory=TamperConfig)

    def decode_mode(self) -> Literal["all", "keyframes"]:
        if self.decode != "auto":
            return self.decode
        slow = bool(self.zones) and all(z.kind == "fire_lane" for z in self.zones)
        return "keyframes" if slow else "all"

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, url: str) -> str:
        if not re.match(r"^(rtsp|rtsps|file)://", url):
            raise ValueError("camera url must start with rtsp:// (or file:// for a recorded clip)")
        return url


class EdgeConfig(_Strict):
    id: Id
    cameras: list[CameraConfig] = Field(default_factory=list)
    metrics_port: int | None = Field(None, ge=0, le=65535)

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        _require_unique([c.id for c in cameras], "camera id")
        return cameras


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    keepalive_s: int = Field(30, ge=5)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class WorkerConfig(_Strict):
    id: Id
    name: str
    phone: str | None = None


class GridCellConfig(_Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str
    level: str = "grid"
    parent: str | None = None
    workers: list[str] = Field(default_factory=list, description="ids of the workers responsible")


class UserConfig(_Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    role: Literal["admin", "monitor", "supervisor", "grid_chief", "grid_worker", "unit"]
    password_env: str | None = None
    password: str | None = Field(None, description="for demos only; production uses password_env")
    worker: str | None = None

    def secret(self) -> str | None:
        if self.password_env:
            return os.environ.get(self.password_env)
        return self.password


class SiteConfig(_Strict):
    site: Id
    name: str = ""
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    edges: list[EdgeConfig] = Field(default_factory=list)
    grid: list[GridCellConfig] = Field(default_factory=list)
    workers: list[WorkerConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> "SiteConfig":
        _require_unique([e.id for e in self.edges], "edge id")
        _require_unique([g.code for g in self.grid], "grid cell code")
        _require_unique([w.id for w in self.workers], "worker id")
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


def _require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice; each {what} must be unique")
        seen.add(value)


class ConfigError(Exception):
    """A configuration file that cannot be used, with one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: invalid configuration\n" + "\n".join(f"  - {p}" for p in problems))


_FIXES = {
    "extra_forbidden": "remove this key or check its spelling",
    "missing": "add this key",
    "string_pattern_mismatch": "use lower-case letters, digits and '-' only",
    "literal_error": "use one of the allowed values",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "greater_than": "use a larger value",
    "float_parsing": "use a number",
    "int_parsing": "use a whole number",
}


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def describe_errors(path: Path | str, exc: ValidationError) -> ConfigError:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(err["type"])
        line = f"{_key_path(err['loc'])}: {msg}"
        if fix:
            line += f" (fix: {fix})"
        problems.append(line)
    return ConfigError(path, problems)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str, key: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in strings; a missing variable is a config error."""
    if isinstance(value, dict):
        return {k: expand_env(v, path, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(path, [f"{key}: environment variable {name} is not set (fix: export {name}=...)"])
        return _ENV_RE.sub(repl, value)
    return value


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (fix: check the path)"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None


def _load(path: Path | str, model: type[BaseModel]) -> Any:
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["(top level): expected a mapping of keys to values"])
    data = expand_env(data, str(path))
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
