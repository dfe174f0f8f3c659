"""The actuator drivers and hub against devices on loopback: pymodbus's server as the relay module,
and small HTTP servers of this test's own standing in for a camera's ISAPI and an IP speaker (no
such device can run here); an unreachable module is a port nobody listens on."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from broker.cameraconfig import EdgeConfig
from broker.netutil import free_port
from broker.payloads import Actuation
from edge.actuators.hub import ActuatorHub
from edge.metrics import EdgeCollector
from sharpeyes.relay_sim import RelayModuleSimulator
from tests.support import wait_until

ZONE = {"id": "car", "kind": "indoor", "polygon": [[0, 0], [1, 0], [1, 1]]}


def _edge(actuators: list[dict]) -> EdgeConfig:
    return EdgeConfig.model_validate({"id": "e1", "actuators": actuators, "cameras": [
        {"id": "lift", "url": "rtsp://127.0.0.1/lift", "zones": [{**ZONE, "actuators": [a["id"] for a in actuators]}]}]})


class Recorder(BaseHTTPRequestHandler):
    """Answers like the device would; keeps every request. A camera's ISAPI asks for digest auth first."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = []
    digest = False

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        if self.digest and not auth.startswith('Digest username="admin"'):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Digest realm="IP Camera", qop="auth", nonce="4e6f6e6365", opaque="0"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        type(self).requests.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(digest: bool) -> tuple[ThreadingHTTPServer, type[Recorder]]:
    handler = type("Handler", (Recorder,), {"requests": [], "digest": digest})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_relay_coil_is_held_renewed_and_released(tmp_path: Path) -> None:
    records: list[Actuation] = []
    with RelayModuleSimulator(watchdog_s=1.5) as sim:
        hub = ActuatorHub(_edge([{"id": "door", "kind": "modbus_tcp", "host": "127.0.0.1", "port": sim.port, "coil": 2,
                                  "watchdog_s": 1.5}]), site="s", record=records.append)
        try:
            hub.hazard_started("lift", "car", "k1", time.monotonic())
            wait_until(lambda: sim.coil(2), 5, interval=0.02, what="coil 2 on")
            time.sleep(4)  # well past the watchdog: renewals keep it on
            assert sim.coil(2) and len(sim.switched_on(2)) == 1
            hub.hazard_ended("lift", "car")
            wait_until(lambda: not sim.coil(2), 5, interval=0.02, what="coil 2 off")
            assert sim.changes[-1].cause == "write"
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in EdgeCollector._actuators(hub) for s in family.samples}
            assert samples[("sharpeyes_edge_actuator_holds_total",
                            (("actuator", "door"), ("camera", "lift"), ("zone", "car")))] == 1
            assert samples[("sharpeyes_edge_actuator_held", (("actuator", "door"),))] == 0
            assert samples[("sharpeyes_edge_actuator_hold_seconds_count", (("actuator", "door"),))] == 1
            assert samples[("sharpeyes_edge_actuator_hold_seconds_sum", (("actuator", "door"),))] > 4
        finally:
            hub.stop()
    actions = [r.action.value for r in records]
    assert actions[0] == "hold" and actions[-1] == "release" and actions.count("rearm") >= 4
    assert records[0].latency_ms is not None and records[0].latency_ms < 1000
    assert records[-1].reason is not None and records[-1].reason.value == "hazard_ended"


def test_an_unreachable_module_is_retried_reported_and_never_blocks_the_caller() -> None:
    records: list[Actuation] = []
    health_changes: list[int] = []
    hub = ActuatorHub(_edge([{"id": "door", "kind": "modbus_tcp", "host": "127.0.0.1", "port": free_port(), "coil": 0,
                              "watchdog_s": 2, "timeout_s": 0.5}]), site="s", record=records.append,
                      on_failing=lambda: health_changes.append(1))
    try:
        started = time.monotonic()
        hub.hazard_started("lift", "car", "k1", started)
        assert time.monotonic() - started < 0.05, "the camera worker only hands the hazard over"
        wait_until(lambda: len([r for r in records if r.action.value == "hold"]) >= 3, 15, what="three attempts")
        assert not any(r.ok for r in records) and "unreachable" in (records[0].error or "")
        gaps = [b.at - a.at for a, b in zip(records, records[1:], strict=False)]
        assert gaps[1] > gaps[0], "the retry delay doubles"
        assert hub.figures()["door"].state == "failing" and health_changes == [1]
    finally:
        hub.stop()


def test_camera_output_over_isapi_with_digest_auth(monkeypatch) -> None:
    monkeypatch.setenv("CAM_OUT_PW", "cam-pw-1")
    server, handler = _serve(digest=True)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    records: list[Actuation] = []
    hub = ActuatorHub(_edge([{"id": "out", "kind": "hikvision_isapi", "url": url, "output": 1, "username": "admin",
                              "password_env": "CAM_OUT_PW", "pulse_s": 10}]), site="s", record=records.append)
    try:
        hub.hazard_started("lift", "car", "k1", time.monotonic())
        wait_until(lambda: records, 5, what="the trigger")
        hub.hazard_ended("lift", "car")
        wait_until(lambda: len(records) >= 2, 5, what="the release")
    finally:
        hub.stop()
        server.shutdown()
    (method, path, _headers, body), *rest = handler.requests
    assert (method, path) == ("PUT", "/ISAPI/System/IO/outputs/1/trigger") and b"<outputState>high</outputState>" in body
    assert b"<outputState>low</outputState>" in rest[-1][3]
    assert records[0].ok and records[-1].action.value == "release"


def test_http_call_is_signed_and_says_how_long_to_hold(monkeypatch) -> None:
    monkeypatch.setenv("SPEAKER_KEY", "speaker-key-2")
    server, handler = _serve(digest=False)
    url = f"http://127.0.0.1:{server.server_address[1]}/play"
    hub = ActuatorHub(_edge([{"id": "speaker", "kind": "http", "url": url, "secret_env": "SPEAKER_KEY", "hold_s": 12,
                              "body": {"voice": "ebike-warning"}}]), site="s", record=lambda r: None)
    try:
        hub.hazard_started("lift", "car", "k1", time.monotonic())
        wait_until(lambda: handler.requests, 5, what="the call")
    finally:
        hub.stop()
        server.shutdown()
    _method, _path, headers, body = handler.requests[0]
    sent = json.loads(body)
    assert sent["action"] == "hold" and sent["hold_s"] == 12 and sent["voice"] == "ebike-warning" and sent["zone"] == "car"
    expected = "sha256=" + hmac.new(b"speaker-key-2", body, hashlib.sha256).hexdigest()
    assert headers["X-Sharpeyes-Signature"] == expected
    assert json.loads(handler.requests[-1][3])["action"] == "release"  # at shutdown


def test_voice_warning_plays_while_held_and_stops_on_release(tmp_path: Path) -> None:
    voice = tmp_path / "warning.wav"
    voice.write_bytes(b"RIFF....WAVE")
    plays = tmp_path / "plays.txt"
    # Stands in for aplay (no sound device here): notes each play, then "plays" for 0.3 s.
    player = [sys.executable, "-c", f"import sys,time; open({str(plays)!r},'a').write(sys.argv[1]+'\\n'); time.sleep(0.3)"]
    records: list[Actuation] = []
    hub = ActuatorHub(_edge([{"id": "voice", "kind": "audio", "file": str(voice), "player": player, "repeat_s": 0.6}]),
                      site="s", record=records.append)
    try:
        hub.hazard_started("lift", "car", "k1", time.monotonic())
        wait_until(lambda: plays.exists() and len(plays.read_text().splitlines()) >= 3, 10, what="three plays")
        hub.hazard_ended("lift", "car")
        wait_until(lambda: records and records[-1].action.value == "release", 5, what="the release")
    finally:
        hub.stop()
    assert set(plays.read_text().split()) == {str(voice)}
    assert all(r.ok for r in records)


def test_a_new_configuration_ends_holds_it_no_longer_drives() -> None:
    records: list[Actuation] = []
    with RelayModuleSimulator(watchdog_s=5) as sim:
        door = {"id": "door", "kind": "modbus_tcp", "host": "127.0.0.1", "port": sim.port, "coil": 1, "watchdog_s": 5}
        hub = ActuatorHub(_edge([door]), site="s", record=records.append)
        try:
            hub.hazard_started("lift", "car", "k1", time.monotonic())
            wait_until(lambda: sim.coil(1), 5, interval=0.02, what="coil 1 on")
            unwired = EdgeConfig.model_validate({"id": "e1", "actuators": [door], "cameras": [
                {"id": "lift", "url": "rtsp://127.0.0.1/lift", "zones": [ZONE]}]})
            hub.apply(unwired)  # the zone no longer lists the door
            wait_until(lambda: not sim.coil(1), 5, interval=0.02, what="coil 1 released")
            assert records[-1].reason is not None and records[-1].reason.value == "hazard_ended"
            moved = {**door, "coil": 2}
            hub.apply(_edge([moved]))
            hub.hazard_started("lift", "car", "k2", time.monotonic())
            wait_until(lambda: sim.coil(2), 5, interval=0.02, what="the moved door on coil 2")
            assert not sim.coil(1) and hub.runners["door"].config.coil == 2
        finally:
            hub.stop()
    assert records[-1].reason is not None and records[-1].reason.value == "shutdown"
