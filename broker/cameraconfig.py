"""One edge's cameras and settings: stream URLs (credentials stay ``${VAR}`` references that only the
edge fills in), tamper and privacy records, and ``EdgeConfig`` with its actuators."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from broker.actuatorconfig import ActuatorConfig
from broker.configbase import ConfigError, Id, StrictModel, expand_env, require_unique
from broker.zoneconfig import CameraRules, keyframes_suffice

_STREAM_URL_RE = re.compile(r"^(rtsp|rtsps|file)://")
# Opening an RTSP stream until its first keyframe is in the ring: the connection, and one keyframe
# interval of a camera whose GOP is up to 4 s.
EVIDENCE_OPEN_S = 5.0


class TamperConfig(StrictModel):
    """When a camera counts as tampered with; see edge/tamper.py for what each measure means."""

    enabled: bool = True
    covered_max_std: float = Field(6.0, ge=0, description="grey-level spread below this: lens covered")
    min_sharpness_ratio: float = Field(
        0.2, ge=0, le=1, description="sharpness below this share of the reference view's: defocused"
    )
    # Measured on parking_lot_traffic.mp4: two cars in view leave 0.57 of the cells matching the
    # empty lot; a camera turned onto a street, a room or a lift keeps 0.00-0.09.
    min_similarity: float = Field(
        0.35, ge=0, le=1, description="share of the view (cells of a 16x9 grid) whose brightness and edges match "
        "the reference below this: turned away")
    dwell_s: float = Field(10.0, ge=0, description="how long the condition must last before it is reported")
    clear_s: float = Field(10.0, ge=0)
    reference_image: str | None = Field(None, description="image captured when the zones were drawn")


class PrivacyRecord(StrictModel):
    """What a security review and PIPL art. 26 ask of each camera (central's PIPL register)."""

    purpose: str = Field(min_length=4, max_length=200, description="why this camera watches, e.g. fire lane safety")
    legal_basis: Literal["public_safety", "statutory_duty", "consent", "contract", "other"] = Field(
        description="PIPL art. 13 basis; art. 26 allows images in public places for public safety only")
    signage: bool = Field(description="a notice sign is posted where the camera watches (art. 26)")
    assessed: str | None = Field(None, description="date or reference of the impact assessment (art. 55-56)")
    notes: str = Field("", max_length=500)


class CameraLocation(StrictModel):
    """Where the camera stands (WGS84), as a city video platform's catalogue gives it."""

    lon: float = Field(ge=-180, le=180, description="longitude, degrees east")
    lat: float = Field(ge=-90, le=90, description="latitude, degrees north")


class CameraConfig(CameraRules):
    id: Id
    name: str | None = Field(None, min_length=1, max_length=200, description="what the operators call it, e.g. 3号楼东门")
    location: CameraLocation | None = Field(None, description="lon/lat (WGS84) from the city platform's catalogue")
    url: str = Field(description="rtsp://user:pass@host/path; ${VAR} is taken from the environment")
    detect_url: str | None = Field(
        None, description="the camera's lower-resolution sub-stream (e.g. 640x360), as NVRs use it: detection, the "
        "scene gate and the tamper check decode it; evidence snapshots and clips still come from url")
    grid_cell: str | None = None
    gb28181_channel_id: Annotated[str, Field(pattern=r"^\d{20}$")] | None = None
    decode: Literal["auto", "all", "keyframes"] = Field(
        "auto", description="auto: keyframes only when every zone is a slow (fire lane) zone"
    )
    offline_s: float = Field(60.0, gt=0, description="no frames for this long raises camera_offline")
    clip_pre_s: float = Field(5.0, ge=0, le=30, description="seconds of video before the event in its clip")
    clip_post_s: float = Field(5.0, ge=0, le=30, description="seconds of video after the event in its clip")
    clips: bool = True
    evidence_stream: Literal["auto", "always", "on_demand"] = Field(
        "auto", description="beside a detect_url: keep the main stream open always, or only while a zone is "
        "timing something towards an alarm (on_demand: one RTSP session instead of two, and no demuxing, while "
        "nothing happens). auto: on_demand; where a zone's dwell_s leaves less than clip_pre_s plus "
        f"{EVIDENCE_OPEN_S:.0f} s to open the stream (a lift's 2 s), the detection stream keeps the clip's "
        "seconds too, and a clip the main stream did not reach back for is cut from them")
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    privacy: PrivacyRecord | None = Field(None, description="purpose, legal basis and signage: the PIPL register")

    def decode_mode(self) -> Literal["all", "keyframes"]:
        if self.decode != "auto":
            return self.decode
        return "keyframes" if keyframes_suffice(self.zones) else "all"

    def evidence_on_demand(self) -> bool:
        """Whether the main stream opens only while an alarm may come (``evidence_stream``)."""
        return self.detect_url is not None and self.evidence_stream != "always"

    def preroll_from_detection_stream(self) -> bool:
        """Whether the detection stream keeps a packet ring for clips: on demand, a zone may alarm
        before the freshly opened main stream holds ``clip_pre_s`` (a lift's e-bike after 2 s), and
        such a clip is cut from the sub-stream instead. Fire lanes, whose dwell leaves the time to
        open the main stream, keep no second ring."""
        if not (self.clips and self.evidence_on_demand()):
            return False
        # dwell_s is filled in from the zone kind once the zone is validated.
        return any((z.dwell_s or 0.0) < self.clip_pre_s + EVIDENCE_OPEN_S for z in self.zones)

    @field_validator("url", "detect_url")
    @classmethod
    def _rtsp_url(cls, url: str | None) -> str | None:
        # A URL that is one whole ${VAR} reference is checked when the edge fills it in.
        if url is not None and not url.startswith("${") and not _STREAM_URL_RE.match(url):
            raise ValueError("camera url must start with rtsp:// (or file:// for a recorded clip)")
        return url

    def stream_url(self) -> str:
        """The URL with its ``${VAR}`` references filled in from this process's environment.

        The site file keeps the references (credentials never travel in a configuration message);
        only the edge that opens the stream resolves them. ConfigError names the missing variable.
        """
        return self._expanded(self.url, "url")

    def detect_stream_url(self) -> str | None:
        """The detection sub-stream's URL, filled in as ``stream_url``; None without one."""
        return None if self.detect_url is None else self._expanded(self.detect_url, "detect_url")

    def _expanded(self, raw: str, key: str) -> str:
        url = expand_env(raw, f"camera {self.id}", key)
        if not _STREAM_URL_RE.match(url):
            raise ConfigError(f"camera {self.id}", [f"{key}: must start with rtsp:// (or file:// for a recorded clip) "
                                                    "once its variables are filled in"])
        return url


class EdgeConfig(StrictModel):
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
        require_unique([c.id for c in cameras], "camera id")
        return cameras

    @model_validator(mode="after")
    def _zones_drive_known_actuators(self) -> EdgeConfig:
        require_unique([a.id for a in self.actuators], "actuator id")
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
                camera.detect_stream_url()
            except ConfigError as exc:
                problems += [f"edges[{self.id}].cameras[{i}].{p}" for p in exc.problems]
        for i, actuator in enumerate(self.actuators):
            problems += [f"edges[{self.id}].actuators[{i}].{p}" for p in actuator.environment_problems()]
        if problems:
            raise ConfigError(source, problems)
