"""How fast a door is held: from the arrival of the frame that completes the e-bike's dwell to the
relay module's acknowledgement, measured on the real edge.

The cameras are RTSP streams of the shared lift clip spliced so the e-scooter comes and goes
every 40 s (sharpeyes.footage); the edge is ``sharpeyes edge run`` in its own process with the
e-bike dwell at 1 s; the relay module is pymodbus's server (sharpeyes relay-sim) with a coil per
camera; the figures are the ``latency_ms`` of the edge's own actuation records, read off
Mosquitto. All cameras start their clips together, so every arrival meets the others': the worst
case for a shared box. Baselines of the same run: one detection of a lift frame on one core and
a bare Modbus write to the same module.

With the scene gate on (the default) the frame that completes the dwell is usually one the gate
answered (the e-bike has not moved since the last detection), so the hold needs no detection of
its own; ``--no-gate`` runs the detector on every sample, the hold's frame included.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

TARGET_P95_MS = 1000.0
LIFT_CAMERA = Path(__file__).resolve().parents[2] / "configs" / "cameras" / "elevator.yaml"  # the lift's car floor


@dataclass
class ActuationFigures:
    cameras: int
    seconds: float
    scene_gate: bool
    holds: int
    failed: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    detection_ms: float
    modbus_write_ms: float
    p95_over_detection: float | None
    target_met: bool


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _site(cameras: list[tuple[str, str]], broker_port: int, relay_port: int, gate: bool) -> dict:
    zone = {**yaml.safe_load(LIFT_CAMERA.read_text(encoding="utf-8"))["zones"][0], "dwell_s": 1, "clear_s": 3}
    return {
        "site": "bench",
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "edges": [{
            "id": "bench",
            "actuators": [{"id": f"door-{i}", "kind": "modbus_tcp", "host": "127.0.0.1", "port": relay_port, "coil": i,
                           "watchdog_s": 5} for i in range(len(cameras))],
            "cameras": [{"id": name, "url": url, "detect_fps": 2, "clips": False, "tamper": {"enabled": False},
                         "scene_gate": {"enabled": gate},
                         "zones": [{**zone, "actuators": [f"door-{i}"]}]} for i, (name, url) in enumerate(cameras)],
        }],
    }


def _detection_ms(clip: Path) -> float:
    import av

    from models.detector import load_detector

    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    detector = load_detector("yolov8n", intra_op_threads=1)
    detector.detect(frame, 640)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        detector.detect(frame, 640)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _modbus_write_ms(port: int, coil: int) -> float:
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    client.connect()
    times = []
    for i in range(50):
        started = time.perf_counter()
        client.write_coil(coil, i % 2 == 0, device_id=1)
        times.append((time.perf_counter() - started) * 1000)
    client.write_coil(coil, False, device_id=1)
    client.close()
    return statistics.median(times)


class _Records:
    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.items: list[dict] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-actuations")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("sharpeyes/v1/bench/bench/actuation", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, message: Any) -> None:
        with self._lock:
            self.items.append(json.loads(message.payload))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def measure(media: Path, cameras: int, seconds: float, workdir: Path | None = None, gate: bool = True,
            progress: Callable[[str], None] = lambda text: None) -> ActuationFigures:
    from broker.mosquitto import MosquittoProcess
    from sharpeyes.footage import lift_in_and_out
    from sharpeyes.relay_sim import RelayModuleSimulator
    from sharpeyes.rtsp_server import FootageServer

    workdir = workdir or Path(tempfile.mkdtemp(prefix="sharpeyes-bench-actuation-"))
    clip = lift_in_and_out(media, workdir / "lift_in_out.mp4")
    names = [f"lift-{i + 1}" for i in range(cameras)]
    footage = FootageServer({f"{n}.mp4": clip for n in names}, workdir=workdir / "rtsp")
    broker = MosquittoProcess(data_dir=workdir / "mosquitto")
    sim = RelayModuleSimulator(coils=cameras, watchdog_s=5)
    edge = None
    records = None
    try:
        footage.start()
        broker.start()
        sim.start()
        config = workdir / "site.yaml"
        config.write_text(yaml.safe_dump(_site([(n, footage.url(f"{n}.mp4")) for n in names], broker.port, sim.port, gate)))
        records = _Records(broker.port)
        progress(f"edge: {cameras} lift cameras at 2 fps, e-bike dwell 1 s, a coil each; {seconds:.0f} s")
        log = (workdir / "edge.log").open("ab")
        edge = subprocess.Popen([sys.executable, "-m", "sharpeyes", "edge", "run", "--config", str(config), "--edge",
                                 "bench", "--outbox", str(workdir / "outbox.db")], stdout=log, stderr=subprocess.STDOUT)
        time.sleep(seconds)
        progress("baselines: one detection of a lift frame, a bare Modbus write")
        modbus_ms = _modbus_write_ms(sim.port, cameras)  # a coil no camera drives
    finally:
        if edge is not None:
            edge.terminate()
            try:
                edge.wait(20)
            except subprocess.TimeoutExpired:
                edge.kill()
        if records is not None:
            time.sleep(1)
            records.close()
        sim.stop()
        broker.close()
        footage.close()
    detection_ms = _detection_ms(clip)
    holds = [r for r in records.items if r["action"] == "hold"] if records else []
    latencies = [r["latency_ms"] for r in holds if r.get("ok") and r.get("latency_ms") is not None]
    p95 = _percentile(latencies, 95)
    return ActuationFigures(
        cameras=cameras, seconds=seconds, scene_gate=gate, holds=len(latencies), failed=len([r for r in holds if not r.get("ok")]),
        latency_p50_ms=_percentile(latencies, 50), latency_p95_ms=p95, latency_max_ms=max(latencies, default=None),
        detection_ms=round(detection_ms, 1), modbus_write_ms=round(modbus_ms, 2),
        p95_over_detection=round(p95 / detection_ms, 2) if p95 is not None else None,
        target_met=p95 is not None and p95 <= TARGET_P95_MS,
    )


def as_json(figures: ActuationFigures) -> str:
    return json.dumps(asdict(figures))
