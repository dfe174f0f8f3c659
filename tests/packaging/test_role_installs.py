"""Each role's extra is complete on its own: a clean virtual environment with only the edge's (or
only central's) locked dependencies imports every module of its packages and runs the role.

The environments are built the way the Dockerfile builds the images: the role's lock file with
--require-hashes --no-deps, then the project from a copy of its sources with --no-deps. A module
that imports an undeclared library fails here, not in a deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import PROJECT_ROOT, SHARED_DIR, stop_process, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SOURCES = ("pyproject.toml", "README.md", "broker", "edge", "central", "models", "sharpeyes")
# Every module of these packages must import in the role's environment.
ROLE_PACKAGES = {"edge": ("edge", "models", "broker"), "central": ("central", "broker")}
# And the other role's heavy libraries must not be there (the images stay small).
# (Central runs onnxruntime too, for the face detector that redacts evidence: central/evidence/redaction.py.)
FOREIGN = {"edge": ("fastapi", "sqlalchemy", "uvicorn"), "central": ("cv2", "av", "torch")}

# Scripts that a tool runs in its own context, never imported: Alembic's env reads alembic.context.config.
RUN_BY_TOOLS = ("central.store.migrations.env",)

IMPORT_ALL = textwrap.dedent("""
    import importlib, importlib.util, json, pkgutil, sys
    packages, foreign, skipped = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
    failed, count = [], 0
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            if info.name in skipped:
                continue
            count += 1
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # report every module, not only the first
                failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
    present = [m for m in foreign if importlib.util.find_spec(m) is not None]
    print(json.dumps({"modules": count, "failed": failed, "foreign": present}))
""")


def _role_venv(role: str, root: Path) -> Path:
    src = root / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "web/node_modules"))
        else:
            shutil.copy2(path, src / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    lock = PROJECT_ROOT / "requirements" / f"{role}.txt"
    for args in (["--require-hashes", "--no-deps", "-r", str(lock)], ["--no-deps", "--no-build-isolation", str(src)]):
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        assert done.returncode == 0, f"pip install {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return venv


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _role_venv("edge", tmp_path_factory.mktemp("edge-role"))


@pytest.fixture(scope="module")
def central_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _role_venv("central", tmp_path_factory.mktemp("central-role"))


def _import_everything(venv: Path, role: str, cwd: Path) -> dict:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_ALL, json.dumps(ROLE_PACKAGES[role]), json.dumps(FOREIGN[role]),
         json.dumps(RUN_BY_TOOLS)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("role", ["edge", "central"])
def test_every_module_imports_with_only_the_roles_dependencies(role: str, request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    venv = request.getfixturevalue(f"{role}_venv")
    # cwd outside the checkout, so the installed copy is imported, not the working tree.
    report = _import_everything(venv, role, tmp_path)
    assert report["failed"] == [], "modules that need an undeclared library:\n" + "\n".join(report["failed"])
    assert report["modules"] > 10
    assert report["foreign"] == [], f"the {role} environment holds the other role's libraries: {report['foreign']}"


def test_an_edge_only_install_replays_footage_into_events(edge_venv: Path, tmp_path: Path) -> None:
    clip = SHARED_DIR / "media" / "street_parked_cars_720p.mp4"
    env = {**os.environ, "SHARPEYES_MODEL_DIR": str(SHARED_DIR / "models")}
    done = subprocess.run(
        [str(edge_venv / "bin" / "sharpeyes"), "edge", "replay", str(clip),
         "--camera-config", str(PROJECT_ROOT / "configs" / "cameras" / "street-parked.yaml")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    starts = [e for e in events if e.get("phase") == "start" and e.get("hazard") == "fire_lane_blocked"]
    assert starts, f"no fire_lane_blocked start from the parked cars; stderr:\n{done.stderr[-2000:]}"


class _Hook:
    """A local webhook receiver that records what central posts."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[_Hook]:
    receiver = _Hook()
    yield receiver
    receiver.close()


def test_a_central_only_install_serves_and_delivers_a_webhook(central_venv: Path, hook: _Hook, tmp_path: Path) -> None:
    from broker.netutil import free_port, wait_for_http

    workflow = yaml.safe_load((PROJECT_ROOT / "configs" / "workflow.yaml").read_text(encoding="utf-8"))
    workflow["auto_dispatch"] = False
    workflow["webhooks"] = [{"name": "duty", "url": hook.url, "format": "json", "events": ["dispatched"],
                             "backoff_s": 0.5}]
    workflow_file = tmp_path / "workflow.yaml"
    workflow_file.write_text(yaml.safe_dump(workflow, allow_unicode=True), encoding="utf-8")
    port = free_port()
    log = tmp_path / "central.log"
    env = {**os.environ, "SHARPEYES_OPEN311_KEY": "k-test"}
    with log.open("wb") as out:
        central = subprocess.Popen(
            [str(central_venv / "bin" / "sharpeyes"), "central", "serve", "--config",
             str(PROJECT_ROOT / "configs" / "demo.yaml"), "--workflow", str(workflow_file), "--no-ingest",
             "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'central.db'}",
             "--evidence-dir", str(tmp_path / "evidence"), "--demo"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", timeout=120, still_alive=lambda: central.poll() is None)
        filed = httpx.post(f"{base}/open311/v2/requests.json",
                           data={"api_key": "k-test", "service_code": "fire_lane_blocked",
                                 "address_string": "多福巷 3号楼 fire lane", "description": "car on the fire lane"})
        assert filed.status_code == 201, filed.text
        incident_id = int(filed.json()[0]["service_request_id"])
        token = httpx.post(f"{base}/api/v1/auth/token",
                           data={"username": "monitor", "password": "sharpeyes-monitor"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for action, body in (("confirm", {}), ("dispatch", {"worker": "wang-fang"})):
            res = httpx.post(f"{base}/api/v1/incidents/{incident_id}/actions/{action}", json=body, headers=headers)
            assert res.status_code == 200, f"{action}: {res.status_code} {res.text}"
        delivered = wait_until(lambda: hook.bodies, 60, what="the webhook delivery")
        facts = delivered[0]["sharpeyes"]
        assert facts["event"] == "dispatched" and facts["incident_id"] == incident_id
    finally:
        stop_process(central)
    assert "ModuleNotFoundError" not in log.read_text(encoding="utf-8", errors="replace")
