"""An edge benchmark's figures: each contestant's, the flat JSON summary ``--json`` prints, the
issue's targets, and a reason for every figure that is null."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sharpeyes.bench import stats
from sharpeyes.bench.procstat import THREAD_KINDS


@dataclass
class Contestant:
    """One measured process over its window."""

    name: str
    cameras: int
    window_s: float = 0.0
    window: tuple[float, float] | None = None  # monotonic clock, shared by all processes
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    cameras_sustained: int = 0
    on_time_share_min: float | None = None
    samples: int = 0
    detections: int = 0  # samples the detector ran on (the rest: the scene gate reused the last detections)
    decode_ms_per_sample: float | None = None
    infer_ms_per_sample: float | None = None
    sample_ms_p95: float | None = None
    reconnects: int = 0
    # Packets of the cameras' main streams demuxed beside their sub-streams, in the window.
    main_stream_packets: int = 0
    # The edge's cores in the window by kind of thread (sharpeyes.bench.procstat.THREAD_KINDS).
    thread_cores: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    # The machine is shared: how busy it was during the window, and how much of that was ours.
    machine_busy_cores: float | None = None
    rtsp_server_cores: float | None = None

    @property
    def cpu_ms_per_sample(self) -> float | None:
        """CPU per analysed frame: comparable even where a contestant fell behind and sampled less."""
        return self.cpu_s / self.samples * 1000 if self.samples else None

    @property
    def cpu_per_camera_s(self) -> float | None:
        if not self.window_s or not self.cameras:
            return None
        return stats.per_camera_second(self.cpu_s, self.cameras, self.window_s)


@dataclass
class BenchResult:
    options: dict[str, Any]
    started_at: str
    machine: dict[str, Any]
    stream: dict[str, Any]
    edge: Contestant
    edge_ungated: Contestant | None = None
    floor: Contestant | None = None
    peer: Contestant | None = None
    # The same predictor given the edge's own fitted graph instead of the file a user has.
    peer_fitted: Contestant | None = None
    alert_latency_ms: list[float] = field(default_factory=list)
    processing_latency_ms: list[float] = field(default_factory=list)
    alerts_expected: int = 0
    # Why a contestant was not run ("floor", "peer", "peer_fitted"): every null figure says why.
    skipped: dict[str, str] = field(default_factory=dict)

    def main_stream_share(self) -> float | None:
        """The share of the main streams' packets the edge demuxed beside the sub-streams: 1.0 with
        every main stream open all the window; less where an empty lane left its stream closed."""
        fps = float(self.stream.get("fps") or 0)
        if not self.options.get("substream") or not self.edge.window_s or not fps:
            return None
        return self.edge.main_stream_packets / (self.edge.cameras * fps * self.edge.window_s)

    def summary(self) -> dict[str, Any]:
        """The flat JSON object ``--json`` prints; keys named in the issue come first."""
        edge_cpu = self.edge.cpu_per_camera_s
        floor_cpu = self.floor.cpu_per_camera_s if self.floor else None
        peer_cpu = self.peer.cpu_per_camera_s if self.peer else None
        out: dict[str, Any] = {
            "cameras": self.edge.cameras,
            "cameras_sustained": self.edge.cameras_sustained,
            "cpu_per_camera_s": _round(edge_cpu, 5),
            "floor_cpu_per_camera_s": _round(floor_cpu, 5),
            "peer_cpu_per_camera_s": _round(peer_cpu, 5),
            "rss_mb": _round(self.edge.rss_mb, 1),
            "alert_latency_ms_p95": _round(stats.percentile(self.alert_latency_ms, 95), 0),
            "edge_vs_floor": _round(stats.ratio(edge_cpu, floor_cpu), 3),
            "edge_vs_peer": _round(stats.ratio(edge_cpu, peer_cpu), 3),
            "peer_fitted_cpu_per_camera_s": _round(self.peer_fitted.cpu_per_camera_s, 5) if self.peer_fitted else None,
            "edge_vs_peer_fitted": _round(stats.ratio(edge_cpu, self.peer_fitted.cpu_per_camera_s), 3)
            if self.peer_fitted else None,
            "decode_ms_per_sample": _round(self.edge.decode_ms_per_sample, 2),
            "infer_ms_per_sample": _round(self.edge.infer_ms_per_sample, 2),
            "sample_ms_p95": _round(self.edge.sample_ms_p95, 1),
            "on_time_share_min": _round(self.edge.on_time_share_min, 3),
            "alerts": len(self.alert_latency_ms),
            "alerts_expected": self.alerts_expected,
            "blocked_cameras": self.options.get("blocked_cameras"),
            "main_stream_share": _round(self.main_stream_share(), 3),
            **{f"cores_{kind}": _round(self.edge.thread_cores.get(kind), 3) for kind in THREAD_KINDS},
            "processing_latency_ms_p95": _round(stats.percentile(self.processing_latency_ms, 95), 0),
            "floor_rss_mb": _round(self.floor.rss_mb, 1) if self.floor else None,
            "peer_rss_mb": _round(self.peer.rss_mb, 1) if self.peer else None,
            "peer_fitted_rss_mb": _round(self.peer_fitted.rss_mb, 1) if self.peer_fitted else None,
            "peer_cameras": self.peer.cameras if self.peer else 0,
            "peer_note": self.peer.note if self.peer else None,
            "seconds": self.options["seconds"],
            "fps": self.options["fps"],
            "gop": self.options["gop"],
            "model": self.options["model"],
            "started_at": self.started_at,
            "machine": self.machine,
        }
        ungated = self.edge_ungated
        ungated_cpu = ungated.cpu_per_camera_s if ungated else None
        out["ungated_cpu_per_camera_s"] = _round(ungated_cpu, 5)
        out["gated_vs_ungated"] = _round(stats.ratio(edge_cpu, ungated_cpu), 3)
        out["ungated_vs_floor"] = _round(stats.ratio(ungated_cpu, floor_cpu), 3)
        out["gated_share"] = _round(1 - self.edge.detections / self.edge.samples, 3) if self.edge.samples else None
        out["changing_cameras"] = self.options.get("changing_cameras", 0)
        out["cpu_ms_per_sample"] = _round(self.edge.cpu_ms_per_sample, 1)
        out["samples"] = self.edge.samples
        out["machine_busy_cores"] = _round(self.edge.machine_busy_cores, 2)
        out["rtsp_server_cores"] = _round(self.edge.rtsp_server_cores, 2)
        # Judged on the CPU it got: the edge's own cores beside the stand-in cameras' share.
        out["edge_cores"] = _round(self.edge.cpu_s / self.edge.window_s, 2) if self.edge.window_s else None
        out["hazard"] = self.options.get("hazard", "fire_lane")
        out["phases"] = self.options.get("phases", 1)
        out["evidence_stream"] = self.options.get("evidence_stream", "always")
        # The machine's speed before the run (sharpeyes/bench/edge_bench/reference.py): compare runs by it.
        out["machine_reference_ms"] = self.options.get("machine_reference_ms")
        out["camera_server"] = self.options.get("camera_server", "python")
        out["camera_server_fallback"] = self.options.get("camera_server_fallback")
        streams = self.edge.cameras * (2 if self.options.get("substream") else 1)
        out["rtsp_server_cpu_per_stream_s"] = (_round(self.edge.rtsp_server_cores / streams, 5)
                                               if self.edge.rtsp_server_cores is not None and streams else None)
        for name, other in (("ungated", self.edge_ungated), ("floor", self.floor), ("peer", self.peer),
                            ("peer_fitted", self.peer_fitted)):
            if other is not None:
                out[f"{name}_cameras_sustained"] = f"{other.cameras_sustained}/{other.cameras}"
                out[f"{name}_on_time_share_min"] = _round(other.on_time_share_min, 3)
                out[f"{name}_decode_ms_per_sample"] = _round(other.decode_ms_per_sample, 2)
                out[f"{name}_infer_ms_per_sample"] = _round(other.infer_ms_per_sample, 2)
                out[f"{name}_machine_busy_cores"] = _round(other.machine_busy_cores, 2)
                out[f"{name}_cpu_ms_per_sample"] = _round(other.cpu_ms_per_sample, 1)
                out[f"{name}_samples"] = other.samples
                out[f"{name}_rss_mb"] = _round(other.rss_mb, 1)
        out["targets"] = targets(out)
        out["why"] = self._why_null(out)
        return out

    def _why_null(self, out: dict[str, Any]) -> dict[str, str]:
        """A reason for every figure (and target) that is null, so no reader has to guess."""
        def reason(contestant: str) -> str:
            ran = {"floor": self.floor, "peer": self.peer, "peer_fitted": self.peer_fitted,
                   "ungated": self.edge_ungated}[contestant]
            if contestant in self.skipped:
                return self.skipped[contestant]
            if ran is not None and ran.note and ran.cpu_per_camera_s is None:
                return f"{contestant} not measured: {ran.note}"
            return f"{contestant} measured no samples in the window"

        why: dict[str, str] = {}
        for key, value in [*out.items(), *(("targets." + k, v) for k, v in out["targets"].items())]:
            if value is not None:
                continue
            bare = key.removeprefix("targets.").removeprefix("edge_vs_")
            if key == "camera_server_fallback":
                why[key] = "no fallback: the camera server asked for ran"
            elif "ungated" in bare:
                why[key] = reason("ungated")
            elif "peer_fitted" in bare:
                why[key] = reason("peer_fitted")
            elif "peer" in bare:
                why[key] = reason("peer")
            elif "floor" in bare:
                why[key] = reason("floor")
            elif "latency" in key:
                why[key] = "no alert reached the broker during the run"
            elif key == "main_stream_share":
                why[key] = "no sub-stream (--no-substream): the one stream is the main stream"
            else:
                why[key] = "the edge measured no samples in the window"
        return why

    def to_json(self) -> str:
        return json.dumps(self.summary(), ensure_ascii=False)

    def details(self) -> dict[str, Any]:
        return {"summary": self.summary(), "edge": asdict(self.edge),
                "edge_ungated": self.edge_ungated and asdict(self.edge_ungated), "floor": self.floor and asdict(self.floor),
                "peer": self.peer and asdict(self.peer), "peer_fitted": self.peer_fitted and asdict(self.peer_fitted),
                "stream": self.stream}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# Issue 28's target for lift cameras: this many per 2-core box, each sustained, alerts p95 within 2 s.
LIFT_CAMERAS_TARGET = 24


def targets(summary: dict[str, Any]) -> dict[str, bool | None]:
    """The targets of the run's hazard (fire lanes: issue 17's; lift cameras: issue 28's)."""
    if summary.get("hazard") == "ebike":
        return lift_targets(summary)
    return fire_lane_targets(summary)


def lift_targets(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Issue 28's for lift cameras at 2 fps: at least 24 cameras sustained on the box, alert p95 at
    most 2 s (the dwell threshold to the event on the broker), RSS at most 1.5 GB."""
    latency = summary["alert_latency_ms_p95"]
    return {
        "all_cameras_sustained": summary["cameras_sustained"] == summary["cameras"],
        f"at_least_{LIFT_CAMERAS_TARGET}_cameras_sustained": summary["cameras_sustained"] >= LIFT_CAMERAS_TARGET,
        "rss_at_most_1_5_gb": summary["rss_mb"] is not None and summary["rss_mb"] <= 1536,
        "alert_latency_p95_at_most_2_s": None if latency is None else latency <= 2000,
    }


def fire_lane_targets(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Issue 17's targets for 2 cores at 0.5 fps: every camera sustained, CPU per camera at most half
    the floor's and an eighth of the peer's, RSS at most 1.5 GB, alert latency p95 at most 3 s."""
    vs_peer, vs_floor = summary["edge_vs_peer"], summary["edge_vs_floor"]
    latency = summary["alert_latency_ms_p95"]
    return {
        "all_cameras_sustained": summary["cameras_sustained"] == summary["cameras"],
        "cpu_at_most_half_of_floor": None if vs_floor is None else vs_floor <= 0.5,
        "cpu_at_most_eighth_of_peer": None if vs_peer is None else vs_peer <= 1 / 8,
        "rss_at_most_1_5_gb": summary["rss_mb"] is not None and summary["rss_mb"] <= 1536,
        "alert_latency_p95_at_most_3_s": None if latency is None else latency <= 3000,
    }


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}
