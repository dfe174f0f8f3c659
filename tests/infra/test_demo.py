"""`sharpeyes demo`: its pure pieces, its failure messages, and the real thing end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from broker.netutil import free_port, port_accepts, wait_for_http
from sharpeyes.demo.layout import (
    DEMO_FILES,
    LIFT_CLIP,
    PROJECT_ROOT,
    RELAY_COIL,
    DemoError,
    DemoLayout,
    DemoPorts,
    central_argv,
    child_env,
    demo_credentials,
    edge_argv,
)
from sharpeyes.demo.smoke import incident_items, missing_hazards

LAYOUT = DemoLayout(root=PROJECT_ROOT, media_dir=Path("/media"))
PORTS = DemoPorts(mqtt=11883, rtsp=18554, http=18080, protocol="3.1.1", relay=11502)


def test_children_get_the_ports_the_demo_config_reads() -> None:
    env = child_env({"PATH": "/bin"}, PORTS, LAYOUT)
    assert env["PATH"] == "/bin"
    assert env["SHARPEYES_MQTT_PORT"] == "11883"
    assert env["SHARPEYES_RTSP_PORT"] == "18554"
    assert env["SHARPEYES_MQTT_PROTOCOL"] == "3.1.1"
    assert env["SHARPEYES_VAR_DIR"] == "var/demo"
    assert env["SHARPEYES_RELAY_PORT"] == "11502"


def test_demo_config_resolves_to_the_demo_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.siteconfig import load_site_config

    for key, value in child_env({}, PORTS, LAYOUT).items():
        monkeypatch.setenv(key, value)
    site = load_site_config(PROJECT_ROOT / "configs/demo.yaml")
    assert (site.broker.port, site.broker.protocol) == (11883, "3.1.1")
    urls = sorted(camera.stream_url() for camera in site.edge("edge-1").cameras)
    assert urls == sorted(f"rtsp://127.0.0.1:18554/{name}" for name in (DEMO_FILES[0], LIFT_CLIP))
    (door,) = site.edge("edge-1").actuators
    assert (door.kind, door.port, door.coil) == ("modbus_tcp", 11502, RELAY_COIL)
    assert [z.actuators for c in site.edge("edge-1").cameras for z in c.zones] == [[], [door.id]]


def test_central_and_edge_command_lines() -> None:
    central = central_argv(LAYOUT, PORTS)
    assert central[-11:] == ["central", "serve", "--config", "configs/demo.yaml",
                             "--database-url", "sqlite:///var/demo/central.db", "--port", "18080",
                             "--evidence-dir", "var/demo/evidence", "--demo"]
    edge = edge_argv(LAYOUT)
    assert edge[-8:] == ["edge", "run", "--config", "configs/demo.yaml", "--edge", "edge-1",
                         "--outbox", "var/demo/edge-1-outbox.db"]


def test_absolute_state_folder_gives_absolute_sqlite_url(tmp_path: Path) -> None:
    layout = DemoLayout(root=PROJECT_ROOT, media_dir=Path("/media"), var=tmp_path)
    assert f"sqlite:///{tmp_path}/central.db" in central_argv(layout, PORTS)
    assert layout.var_abs == tmp_path


def test_incident_responses_and_missing_hazards() -> None:
    page = {"total": 2, "items": [{"hazard": "ebike_indoor"}, {"hazard": "zone_occupancy"}]}
    assert missing_hazards(incident_items(page)) == ["fire_lane_blocked"]
    assert missing_hazards(incident_items([{"hazard": "fire_lane_blocked"}, {"hazard": "ebike_indoor"}])) == []
    assert missing_hazards([]) == ["fire_lane_blocked", "ebike_indoor"]
    with pytest.raises(DemoError, match="not a list"):
        incident_items({"detail": "Not authenticated"})


def test_demo_credentials_come_from_the_demo_config() -> None:
    creds = {c.username: (c.password, c.role) for c in demo_credentials(PROJECT_ROOT / "configs/demo.yaml")}
    assert creds["admin"] == ("sharpeyes-admin", "admin")
    assert creds["monitor"] == ("sharpeyes-monitor", "monitor")
    assert creds["wang-fang"] == ("sharpeyes-worker", "grid_worker")


def _demo(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "sharpeyes"), "demo", *args]


def test_missing_footage_fails_fast_with_the_fix(tmp_path: Path) -> None:
    result = subprocess.run(_demo("--smoke", "--media-dir", str(tmp_path), "--var-dir", str(tmp_path / "state")),
                            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 1
    assert "demo footage missing" in result.stdout
    assert "street_parked_cars_720p.mp4" in result.stdout


@pytest.mark.slow
def test_smoke_run_finds_both_hazards_and_cleans_up(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    state.mkdir()
    (state / "central.db").write_text("stale database from an earlier run")  # must be replaced
    (state / "keep.txt").write_text("not the demo's")
    result = subprocess.run(_demo("--smoke", "--var-dir", str(state)), capture_output=True, text=True,
                            timeout=240, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "SMOKE OK" in result.stdout
    assert "hazard=fire_lane_blocked" in result.stdout and "hazard=ebike_indoor" in result.stdout
    assert "relay module: coil 0 ON: lift 1 door held open" in result.stdout  # the e-scooter held the lift's door
    assert "console: http://127.0.0.1:" in result.stdout and "sharpeyes-monitor" in result.stdout
    # The demo shows its own logins to the person who started it; central's and the edge's logs
    # hold no password, and nothing holds the token key central generated.
    children = [line for line in result.stdout.splitlines() if line.startswith(("[central]", "[edge-1]"))]
    assert children and "DEMO MODE (--demo)" in "\n".join(children)
    for user in yaml.safe_load((PROJECT_ROOT / "configs/demo.yaml").read_text(encoding="utf-8"))["users"]:
        password = user["password"].split(":-", 1)[1].rstrip("}")
        assert all(password not in line for line in children), user["username"]
    key = (state / "jwt_secret").read_text().strip()
    assert len(key) >= 32 and key not in result.stdout + result.stderr
    assert (state / "keep.txt").exists()
    assert _demo_processes(state) == []


@pytest.mark.slow
def test_smoke_deadline_failure_names_the_missing_hazards(tmp_path: Path) -> None:
    result = subprocess.run(_demo("--smoke", "--deadline", "1", "--broker", "embedded", "--var-dir", str(tmp_path)),
                            capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 1
    assert "SMOKE FAILED after 1 s: no fire_lane_blocked or ebike_indoor incident" in result.stdout
    assert "--- last lines of central" in result.stdout  # the children's logs explain why
    assert "EMBEDDED DEMO BROKER (amqtt)" in result.stdout
    assert _demo_processes(tmp_path) == []


@pytest.mark.slow
def test_sigint_stops_every_part(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(_demo("--port", str(port), "--var-dir", str(tmp_path)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=PROJECT_ROOT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 90, still_alive=lambda: proc.poll() is None, what="demo")
        time.sleep(2)  # let the edge start too
        assert len(_demo_processes(tmp_path)) >= 5  # demo, broker, rtsp server, central, edge
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "[demo] stopping" in out
    assert not port_accepts("127.0.0.1", port)
    assert _demo_processes(tmp_path) == []


def _demo_processes(state: Path) -> list[str]:
    """Command lines of live processes that mention the demo's state folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(state) in cmdline:
            found.append(cmdline)
    return found
