"""`sharpeyes central serve|migrate` as a user runs them: a real process, HTTP and a live stream."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

from broker.netutil import free_port
from broker.topics import event_topic
from tests.central.factories import EDGE, SITE, event, site_config, wire
from tests.support import PROJECT_ROOT, wait_until

SHARPEYES = [sys.executable, "-m", "sharpeyes.cli"] if not (PROJECT_ROOT / ".venv/bin/sharpeyes").exists() else [
    str(PROJECT_ROOT / ".venv/bin/sharpeyes")
]


def _head() -> str:
    """The newest migration in central/store/migrations (one head: every migration chains onto it)."""
    from alembic.script import ScriptDirectory

    from central.store.migrate import MIGRATIONS_DIR

    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def test_migrate_command_brings_an_empty_database_to_head(database_url: str) -> None:
    done = subprocess.run([*SHARPEYES, "central", "migrate", "--database-url", database_url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 0
    engine.dispose()


def test_serve_logs_ready_and_streams_incident_changes(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(site_config(broker_port=mosquitto.port).model_dump(mode="json"), allow_unicode=True))
    port = free_port()
    env = dict(os.environ, SHARPEYES_VAR_DIR=str(tmp_path / "var"))
    env.pop("SHARPEYES_JWT_SECRET", None)
    proc = subprocess.Popen(
        [*SHARPEYES, "central", "serve", "--config", str(config), "--port", str(port),
         "--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--evidence-dir", str(tmp_path / "ev"),
         "--mqtt-client-id", f"central-cli-{uuid.uuid4().hex[:6]}", "--demo"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).json()["mqtt_connected"] is True
            except httpx.HTTPError:
                return proc.poll() is not None  # stop waiting if it died
        wait_until(healthy, 30, what="central /healthz with MQTT connected")
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert (tmp_path / "var" / "jwt_secret").exists()

        login = httpx.post(f"{base}/api/v1/auth/token", data={"username": "monitor", "password": "monitor-pw"})
        token = login.json()
        lines: queue.Queue[str] = queue.Queue()

        def read_stream() -> None:
            # A reader thread, so the test waits with its own deadline and can say what it saw.
            try:
                # As a browser's EventSource does: the HttpOnly session cookie set at login, no token in the URL.
                with httpx.stream("GET", f"{base}/api/v1/stream", cookies=login.cookies,
                                  timeout=httpx.Timeout(5, read=60)) as stream:
                    lines.put(f"status {stream.status_code} {stream.headers['content-type']}")
                    for line in stream.iter_lines():
                        lines.put(line)
            except httpx.HTTPError as exc:
                lines.put(f"error {exc!r}")

        threading.Thread(target=read_stream, daemon=True).start()
        assert lines.get(timeout=10).startswith("status 200 text/event-stream")
        assert lines.get(timeout=10) == "event: hello"

        edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{uuid.uuid4().hex[:6]}")
        edge.connect("127.0.0.1", mosquitto.port)
        edge.loop_start()
        info = edge.publish(event_topic(SITE, EDGE), wire(event(f"k-cli-{uuid.uuid4().hex[:6]}")), qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
        edge.disconnect()
        edge.loop_stop()

        seen: list[str] = []
        deadline = time.monotonic() + 20
        while "event: incidents" not in seen and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        assert "event: incidents" in seen, seen
        items = httpx.get(f"{base}/api/v1/incidents", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        assert items["total"] == 1
    finally:
        # The live stream is still open here: a browser tab must not hold up a shutdown.
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"central ready on http://127.0.0.1:{port}" in out, out
    assert "central stopped" in out, out
    assert time.monotonic() - stopping < 5, out
