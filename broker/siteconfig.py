"""Site configuration: one YAML file describing a site's edges, cameras, zones, grid and people.

It belongs to the contract because both sides read it, and central pushes each edge its own part
of it (``cmd/config``, broker/edgeconfig.py). Validation happens once, at start-up, and every error names the file, the key and a fix.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from broker.actuatorconfig import ActuatorConfig
from broker.payloads import HazardKind
from broker.topics import ID_PATTERN

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$", max_length=64)]

ZoneKind = Literal["fire_lane", "indoor", "occupancy"]

# The design's defaults per zone kind: (dwell_s, clear_s, realarm_s).
ZONE_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "fire_lane": (120.0, 30.0, 300.0),
    "indoor": (2.0, 10.0, 300.0),
    "occupancy": (10.0, 10.0, 300.0),
}
ZONE_HAZARD: dict[str, HazardKind] = {
    "fire_lane": HazardKind.FIRE_LANE_BLOCKED,
    "indoor": HazardKind.EBIKE_INDOOR,
    "occupancy": HazardKind.ZONE_OCCUPANCY,
}
# COCO labels each zone kind reacts to with the default model. Occupancy has none on purpose:
# what it counts (people, vehicles, bicycles...) is the whole point of its configuration.
ZONE_LABELS: dict[str, tuple[str, ...]] = {
    "fire_lane": ("car", "truck", "bus", "motorcycle"),
    "indoor": ("motorcycle", "bicycle"),
}


@dataclass(frozen=True, slots=True)
class HazardProfile:
    """How a zone kind wants its camera sampled.

    ``detect_fps`` is the cadence used when the camera config gives none; ``fps_range`` is
    what the hazard was designed for (documentation and the benchmark's yardstick, not a
    limit). A static hazard such as a parked car needs one look a second or less, which is
    also what lets the reader decode keyframes only (``CameraConfig.decode_mode``); an
    e-bike wheeled into an elevator is in view for a few seconds, so it needs 2-5 looks.

    ``detect_width`` is the long side of the detector's input (Ultralytics exports are fitted
    to it, see models/reanchor.py). A vehicle blocking a fire lane is one of the largest things
    in view, and 480 px finds the parked cars of the shared street and parking-lot clips as
    well as 640 does, for a third of the square 640 inference; people and e-bikes keep 640.
    """

    detect_fps: float
    fps_range: tuple[float, float]
    detect_width: int = 640


HAZARD_PROFILES: dict[str, HazardProfile] = {
    "fire_lane": HazardProfile(detect_fps=1.0, fps_range=(0.5, 1.0), detect_width=480),
    "indoor": HazardProfile(detect_fps=2.0, fps_range=(2.0, 5.0)),
    "occupancy": HazardProfile(detect_fps=1.0, fps_range=(1.0, 1.0)),
}
# A camera with no zones (health watch only) still samples now and then.
IDLE_DETECT_FPS = 1.0
IDLE_DETECT_WIDTH = 640

# Options that only some kinds implement; setting them elsewhere would be silently ignored.
_KIND_ONLY_OPTIONS: dict[str, tuple[str, ...]] = {
    "min_count": ("indoor", "occupancy"),
    "active_hours": ("indoor", "occupancy"),
}
_STREAM_URL_RE = re.compile(r"^(rtsp|rtsps|file)://")
_WINDOW_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def cadence_for(zones: list[ZoneConfig]) -> float:
    """The detect fps a camera needs for these zones: the fastest of their profiles."""
    return max((HAZARD_PROFILES[z.kind].detect_fps for z in zones), default=IDLE_DETECT_FPS)


def detect_width_for(zones: list[ZoneConfig]) -> int:
    """The detector input a camera needs for these zones: the widest of their profiles."""
    return max((HAZARD_PROFILES[z.kind].detect_width for z in zones), default=IDLE_DETECT_WIDTH)


def parse_time_window(text: str) -> tuple[dt.time, dt.time]:
    """"HH:MM-HH:MM" (24-hour, local time) as (start, end); end before start crosses midnight."""
    m = _WINDOW_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time window; write it as HH:MM-HH:MM, e.g. \"22:00-06:00\"")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    for h, mm in ((h1, m1), (h2, m2)):
        if h > 23 or mm > 59:
            raise ValueError(f"{text!r}: {h:02d}:{mm:02d} is not a time of day; hours go 00-23 and minutes 00-59")
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time; to watch all day leave active_hours out")
    return start, end


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
    name: str | None = Field(None, max_length=80, description="shown in evidence titles, e.g. crowd gathering")
    min_count: int | None = Field(None, ge=1, description="objects needed at once (indoor, occupancy; default 1)")
    active_hours: list[str] | None = Field(
        None, description='local-time windows "HH:MM-HH:MM" (may cross midnight); outside them the zone is idle'
    )
    actuators: list[Id] = Field(default_factory=list, description="ids of the edge's actuators this zone holds "
                                "while its hazard lasts (door hold, voice warning); docs/actuation.md")

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

    @field_validator("active_hours")
    @classmethod
    def _valid_windows(cls, windows: list[str] | None) -> list[str] | None:
        if windows is not None:
            if not windows:
                raise ValueError("active_hours is empty; list at least one window such as \"22:00-06:00\" or leave it out")
            for window in windows:
                parse_time_window(window)
        return windows

    @field_validator("actuators")
    @classmethod
    def _actuators_once(cls, actuators: list[str]) -> list[str]:
        _require_unique(actuators, "actuator")
        return actuators

    @field_validator("labels")
    @classmethod
    def _some_labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is not None and not labels:
            raise ValueError("labels is empty, so the zone could never alarm; list the labels to watch, e.g. [person]")
        return labels

    @model_validator(mode="after")
    def _fill_defaults(self) -> ZoneConfig:
        for option, kinds in _KIND_ONLY_OPTIONS.items():
            if getattr(self, option) is not None and self.kind not in kinds:
                raise ValueError(
                    f"{option} applies only to zones of kind {' or '.join(kinds)}, not {self.kind}; remove {option}"
                )
        if self.labels is None and self.kind not in ZONE_LABELS:
            raise ValueError(
                f"labels is required for kind {self.kind}: add e.g. labels: [person] (the detector's class names to count)"
            )
        dwell, clear, realarm = ZONE_DEFAULTS[self.kind]
        if self.dwell_s is None:
            self.dwell_s = dwell
        if self.clear_s is None:
            self.clear_s = clear
        if self.realarm_s is None:
            self.realarm_s = realarm
        if self.labels is None:
            self.labels = list(ZONE_LABELS[self.kind])
        if self.min_count is None and self.kind in _KIND_ONLY_OPTIONS["min_count"]:
            self.min_count = 1
        return self

    @property
    def hazard(self) -> HazardKind:
        return ZONE_HAZARD[self.kind]

    def active_windows(self) -> list[tuple[dt.time, dt.time]]:
        """The parsed ``active_hours``; empty means always active."""
        return [parse_time_window(w) for w in self.active_hours or ()]


class SceneGateConfig(_Strict):
    """Skip the detector while the zones look unchanged (edge/scene_gate.py)."""

    enabled: bool = True
    threshold: float = Field(10.0, gt=0, le=255, description="grey levels of change, in any 8x8 block of the zones' "
                             "area on a 96 px thumbnail, that count as a change and run the detector")
    max_skip_s: float | None = Field(None, gt=0, le=600, description="a full detection at least this often; default "
                                     "by the zones' kinds: fire lane 30 s, occupancy 5 s, indoor 3 s")


class CameraRules(_Strict):
    """What the pipeline needs to watch one camera: the file given to ``edge replay``."""

    zones: list[ZoneConfig] = Field(default_factory=list)
    detect_fps: float | None = Field(
        None, gt=0, le=30, description="samples analysed per second; default: the fastest profile among the zones"
    )
    model: str = "yolov8n"
    detect_width: int | None = Field(
        None, ge=160, le=1280, multiple_of=32,
        description="long side of the detector input in pixels (Ultralytics models); default: the widest profile "
        "among the zones (480 for fire lanes, 640 otherwise); raise it for small, distant objects",
    )
    timezone: str | None = Field(
        None, description="IANA zone for active_hours, e.g. Asia/Shanghai; default: the edge machine's local zone"
    )
    scene_gate: SceneGateConfig = Field(default_factory=SceneGateConfig)

    @field_validator("zones")
    @classmethod
    def _unique_zone_ids(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        _require_unique([z.id for z in zones], "zone id")
        return zones

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str | None) -> str | None:
        if name is not None:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None
        return name

    @model_validator(mode="after")
    def _fill_cadence(self) -> CameraRules:
        # Always set after validation: an explicit detect_fps wins, else the zones' profiles decide.
        if self.detect_fps is None:
            self.detect_fps = cadence_for(self.zones)
        if self.detect_width is None:
            self.detect_width = detect_width_for(self.zones)
        return self

    def tzinfo(self) -> dt.tzinfo | None:
        """The zone that active_hours are read in; None means the machine's local zone."""
        return ZoneInfo(self.timezone) if self.timezone else None


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


class PrivacyRecord(_Strict):
    """What a security review and PIPL art. 26 ask of each camera (central's PIPL register)."""

    purpose: str = Field(min_length=4, max_length=200, description="why this camera watches, e.g. fire lane safety")
    legal_basis: Literal["public_safety", "statutory_duty", "consent", "contract", "other"] = Field(
        description="PIPL art. 13 basis; art. 26 allows images in public places for public safety only")
    signage: bool = Field(description="a notice sign is posted where the camera watches (art. 26)")
    assessed: str | None = Field(None, description="date or reference of the impact assessment (art. 55-56)")
    notes: str = Field("", max_length=500)


class CameraConfig(CameraRules):
    id: Id
    url: str = Field(description="rtsp://user:pass@host/path; ${VAR} is taken from the environment")
    grid_cell: str | None = None
    gb28181_channel_id: Annotated[str, Field(pattern=r"^\d{20}$")] | None = None
    decode: Literal["auto", "all", "keyframes"] = Field(
        "auto", description="auto: keyframes only when every zone is a slow (fire lane) zone"
    )
    offline_s: float = Field(60.0, gt=0, description="no frames for this long raises camera_offline")
    clip_pre_s: float = Field(5.0, ge=0, le=30, description="seconds of video before the event in its clip")
    clip_post_s: float = Field(5.0, ge=0, le=30, description="seconds of video after the event in its clip")
    clips: bool = True
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    privacy: PrivacyRecord | None = Field(None, description="purpose, legal basis and signage: the PIPL register")

    def decode_mode(self) -> Literal["all", "keyframes"]:
        if self.decode != "auto":
            return self.decode
        slow = bool(self.zones) and all(z.kind == "fire_lane" for z in self.zones)
        return "keyframes" if slow else "all"

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, url: str) -> str:
        # A URL that is one whole ${VAR} reference is checked when the edge fills it in.
        if not url.startswith("${") and not _STREAM_URL_RE.match(url):
            raise ValueError("camera url must start with rtsp:// (or file:// for a recorded clip)")
        return url

    def stream_url(self) -> str:
        """The URL with its ``${VAR}`` references filled in from this process's environment.

        The site file keeps the references (credentials never travel in a configuration message);
        only the edge that opens the stream resolves them. ConfigError names the missing variable.
        """
        url = expand_env(self.url, f"camera {self.id}", "url")
        if not _STREAM_URL_RE.match(url):
            raise ConfigError(f"camera {self.id}", ["url: must start with rtsp:// (or file:// for a recorded clip) "
                                                    "once its variables are filled in"])
        return url


class EdgeConfig(_Strict):
    id: Id
    cameras: list[CameraConfig] = Field(default_factory=list)
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus /metrics; 0 picks a free port")
    metrics_host: str = "127.0.0.1"
    outbox_max_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024,
                                  description="beyond this, clips, then snapshots, then update events are dropped, oldest first")
    outbox_max_age_s: float = Field(7 * 86400, ge=60, description="clips, snapshots and updates older than this are dropped")
    outbox_max_file_bytes: int | None = Field(None, ge=4 * 1024 * 1024,
                                              description="hard cap on the outbox file; reaching it is handled like a full disk")
    heartbeat_s: float = Field(60.0, gt=0)
    inference_slots: int | None = Field(
        None, ge=1, le=64, description="detections running at once (default: one per CPU core, each single-threaded)"
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime execution providers in order of preference, e.g. [CUDAExecutionProvider, "
        "CPUExecutionProvider]; one that is not installed falls back to CPU with a warning",
    )
    actuators: list[ActuatorConfig] = Field(
        default_factory=list, description="outputs zones may drive: relay coils, camera alarm outputs, speakers "
        "(broker/actuatorconfig.py, docs/actuation.md)"
    )

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        _require_unique([c.id for c in cameras], "camera id")
        return cameras

    @model_validator(mode="after")
    def _zones_drive_known_actuators(self) -> EdgeConfig:
        _require_unique([a.id for a in self.actuators], "actuator id")
        known = {a.id for a in self.actuators}
        for camera in self.cameras:
            for zone in camera.zones:
                for name in zone.actuators:
                    if name not in known:
                        listed = ", ".join(sorted(known)) or "none"
                        raise ValueError(f"camera {camera.id!r} zone {zone.id!r} drives actuator {name!r}, which is "
                                         f"not among this edge's actuators ({listed}); add it under actuators:")
        return self

    def check_environment(self, source: Path | str) -> None:
        """ConfigError naming, one line each, what this process's environment lacks to open the
        edge's cameras (their ``${VAR}`` references) and drive its actuators (their secrets' variables,
        a voice file); SOURCE is where the configuration came from."""
        problems = []
        for i, camera in enumerate(self.cameras):
            try:
                camera.stream_url()
            except ConfigError as exc:
                problems += [f"edges[{self.id}].cameras[{i}].{p}" for p in exc.problems]
        for i, actuator in enumerate(self.actuators):
            problems += [f"edges[{self.id}].actuators[{i}].{p}" for p in actuator.environment_problems()]
        if problems:
            raise ConfigError(source, problems)


class BrokerConfig(_Strict):
    """How a client (an edge, central, a tool) reaches the broker.

    Credentials: the username defaults to the client's role identity (an edge's id, ``central``)
    when left out; the password comes from ``password_env`` or ``password_file`` (a mounted
    secret), never from this file. TLS verifies the broker's certificate against ``ca_file`` (or
    the system's trust store when it is left out); ``tls_insecure`` only skips the host-name check
    and exists for lab set-ups that reach the broker by an address not in its certificate.
    """

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: str | None = Field(None, description="file holding the password (a container secret)")
    keepalive_s: int = Field(30, ge=5)
    tls: bool = Field(False, description="connect with TLS (the broker's TLS listener, usually port 8883)")
    ca_file: str | None = Field(None, description="CA certificate (PEM) that signed the broker's certificate")
    cert_file: str | None = Field(None, description="client certificate (PEM), when the broker asks for one")
    key_file: str | None = Field(None, description="private key (PEM) of cert_file")
    tls_insecure: bool = Field(
        False, description="skip the host-name check of the broker's certificate (its chain is still verified)"
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _tls_settings_agree(self) -> BrokerConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both (client certificate and its key) or neither")
        if not self.tls:
            for key in ("ca_file", "cert_file", "key_file"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} is set but tls is false; add tls: true (and the TLS port) or remove {key}")
            if self.tls_insecure:
                raise ValueError("tls_insecure is set but tls is false; remove tls_insecure")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give the password either by password_env or by password_file, not both")
        return self

    def password(self) -> str | None:
        """The configured password, or None when no source is configured or the variable is unset."""
        if self.password_file:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except FileNotFoundError:
                return None
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
    area: list[tuple[float, float]] | None = Field(
        None, description="boundary [[lon, lat], ...] (WGS84): routes located reports (Open311) to this cell"
    )


class UserConfig(_Strict):
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


class SiteConfig(_Strict):
    site: Id
    name: str = ""
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    edges: list[EdgeConfig] = Field(default_factory=list)
    grid: list[GridCellConfig] = Field(default_factory=list)
    workers: list[WorkerConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> SiteConfig:
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


# Keys whose ${VAR} references are kept as written at load: camera URLs carry credentials, which
# only the edge that opens the stream fills in (CameraConfig.stream_url); central never needs them.
_KEPT_REFERENCES = re.compile(r"^edges\[\d+\]\.cameras\[\d+\]\.url$")


def expand_env(value: Any, path: str, key: str = "", keep: re.Pattern[str] | None = None) -> Any:
    """Replace ${VAR} and ${VAR:-default} in strings; a missing variable is a config error.
    Strings at keys matching ``keep`` are left as written."""
    if isinstance(value, dict):
        return {k: expand_env(v, path, f"{key}.{k}" if key else str(k), keep) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, path, f"{key}[{i}]", keep) for i, v in enumerate(value)]
    if isinstance(value, str) and keep is not None and keep.match(key):
        return value
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
