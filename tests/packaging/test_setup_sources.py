"""What a newcomer's `make demo` and `make test` install, and from where.

Every lock pins every package with its sha256 hashes. `make demo` installs requirements/demo.txt:
both roles, the footage server and the embedded broker, never torch or Ultralytics, and exactly the
pins and hashes of the full lock, so that a later `make setup` only adds to it. `make setup` takes
torch's CPU build (which PyPI does not carry) from the machine's own package sources, and from
PyTorch's CPU index only where they lack it, with the lock's hashes checked either way: that is
scripts/install-lock.sh, run here against local stand-ins for both sources (no network).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

REQUIREMENTS = PROJECT_ROOT / "requirements"
NOT_FOR_THE_DEMO = ("torch", "torchvision", "ultralytics", "ultralytics-platform", "ultralytics-thop")


def _pins(lock: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of every requirement in a lock; fails on anything but name==version."""
    pins = {}
    text = lock.read_text(encoding="utf-8")
    for block in re.split(r"(?m)^(?=[A-Za-z0-9])", text):
        if not block[:1].isalnum():
            continue  # the header's comments
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+) \\\n", block)
        assert match, f"{lock.name}: not pinned with == and hashes: {block.splitlines()[0]!r}"
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
        assert hashes, f"{lock.name}: {match.group(1)} has no sha256 hash"
        pins[match.group(1).lower()] = (match.group(2), hashes)
    return pins


@pytest.mark.parametrize("lock", sorted(REQUIREMENTS.glob("*.txt")), ids=lambda p: p.name)
def test_every_lock_pins_every_package_with_hashes(lock: Path) -> None:
    assert _pins(lock), f"{lock.name} pins nothing"


def test_the_demo_lock_has_no_torch_and_the_pins_of_the_full_lock() -> None:
    demo, full = _pins(REQUIREMENTS / "demo.txt"), _pins(REQUIREMENTS / "export.txt")
    assert not set(NOT_FOR_THE_DEMO) & set(demo)
    # `make setup` after `make demo` reinstalls nothing the demo put there.
    assert {name: pin for name, pin in demo.items() if full.get(name) != pin} == {}
    # Both roles run in the demo.
    roles = set(_pins(REQUIREMENTS / "edge.txt")) | set(_pins(REQUIREMENTS / "central.txt"))
    assert roles - set(demo) == set()


def test_the_demo_requirements_are_the_dev_extras() -> None:
    dev = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["dev"]
    lines = [line.split("#")[0].strip() for line in (REQUIREMENTS / "demo.in").read_text(encoding="utf-8").splitlines()]
    assert [line for line in lines if line and line not in dev] == []


def test_make_demo_installs_the_demo_lock_only(tmp_path: Path) -> None:
    plan = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert "install-lock.sh" in plan and "requirements/demo.txt" in plan
    assert "requirements/export.txt" not in plan


# --- scripts/install-lock.sh against stand-in sources ----------------------------------------------

TORCH_NAME = re.findall(r"(?m)^([A-Za-z0-9._-]+)==", (REQUIREMENTS / "torch-cpu.in").read_text(encoding="utf-8"))[0]
TORCH_VERSION = "0.0.1+cpu"  # a stand-in wheel, not PyTorch


def _wheel(folder: Path, name: str, version: str, body: str = "") -> str:
    """Writes a minimal pure-Python wheel into folder; returns its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"  # a wheel's file name and dist-info spell - as _
    info = f"{stem}.dist-info"
    files = {
        f"{name.replace('-', '_')}_standin/__init__.py": f"VERSION = {version!r}\n{body}",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b'=').decode()},{len(data.encode())}\n"
        for path, data in files.items()
    )
    path = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in {**files, f"{info}/RECORD": record + f"{info}/RECORD,,\n"}.items():
            wheel.writestr(member, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _index(root: Path, wheels: Path | None) -> Path:
    """A PEP 503 index at root listing the wheels of a folder (none: an empty index)."""
    root.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")) if wheels else ():
        project = root / wheel.name.split("-")[0]
        project.mkdir(exist_ok=True)
        (project / "index.html").write_text(f'<html><body><a href="{wheel.as_uri()}">{wheel.name}</a></body></html>\n')
    return root


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # `make setup` makes its venv the same way: a Python without ensurepip fails both, loudly.
    assert importlib.util.find_spec("ensurepip") is not None, "this Python cannot make a venv with pip (no ensurepip)"
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    return root / "bin" / "python"


@dataclass
class Sources:
    env: dict[str, str]
    lock: Path
    local: Path  # the machine's own wheels (PIP_FIND_LINKS); its index is empty, like PyPI for +cpu
    pytorch_wheels: Path  # what the stand-in for PyTorch's CPU index lists
    log: Path


@pytest.fixture
def sources(tmp_path: Path, venv: Path) -> Iterator[Sources]:
    local, pytorch_wheels = tmp_path / "local", tmp_path / "pytorch-wheels"
    other_hash = _wheel(local, "standin-other", "1.0")
    torch_hash = _wheel(pytorch_wheels, TORCH_NAME, TORCH_VERSION)
    lock = tmp_path / "lock.txt"
    lock.write_text(f"{TORCH_NAME}=={TORCH_VERSION} \\\n    --hash=sha256:{torch_hash}\n"
                    f"standin-other==1.0 \\\n    --hash=sha256:{other_hash}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=_index(tmp_path / "empty-index", None).as_uri(),
               PIP_FIND_LINKS=str(local), PIP_CACHE_DIR=str(tmp_path / "cache"), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", SHARPEYES_TORCH_INDEX=_index(tmp_path / "pytorch-index", pytorch_wheels).as_uri())
    yield Sources(env, lock, local, pytorch_wheels, tmp_path / "pip.log")
    subprocess.run([str(venv), "-m", "pip", "uninstall", "-y", "-q", TORCH_NAME, "standin-other"], capture_output=True)


def _install(venv: Path, sources: Sources) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROJECT_ROOT / "scripts" / "install-lock.sh"), str(venv), str(sources.lock), str(sources.log)],
                          env=sources.env, capture_output=True, text=True, timeout=300)


def _installed(venv: Path, name: str) -> str:
    code = f"import importlib.metadata as m\ntry: print(m.version({name!r}))\nexcept m.PackageNotFoundError: print('-')"
    return subprocess.run([str(venv), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_configured_sources_come_first(venv: Path, sources: Sources) -> None:
    shutil.copy(next(sources.pytorch_wheels.glob("*.whl")), sources.local)
    sources.env["SHARPEYES_TORCH_INDEX"] = (sources.log.parent / "unreachable").as_uri()
    result = _install(venv, sources)
    assert result.returncode == 0, result.stderr
    assert "fetching" not in result.stdout
    assert _installed(venv, TORCH_NAME) == TORCH_VERSION


def test_torch_falls_back_to_pytorchs_index(venv: Path, sources: Sources) -> None:
    result = _install(venv, sources)
    assert result.returncode == 0, result.stderr
    said = f"{TORCH_NAME}=={TORCH_VERSION} (PyTorch's CPU build) is not on this machine's package sources; fetching it from"
    assert said in result.stdout
    assert (_installed(venv, TORCH_NAME), _installed(venv, "standin-other")) == (TORCH_VERSION, "1.0")


def test_the_fallback_checks_the_hashes(venv: Path, sources: Sources) -> None:
    _wheel(sources.pytorch_wheels, TORCH_NAME, TORCH_VERSION, body="TAMPERED = True\n")
    result = _install(venv, sources)
    assert result.returncode == 1
    assert "does not match the hashes" in result.stderr
    assert _installed(venv, TORCH_NAME) == "-"


def test_neither_source_says_what_to_do(venv: Path, sources: Sources) -> None:
    for wheel in sources.pytorch_wheels.glob("*.whl"):
        wheel.unlink()
    result = _install(venv, sources)
    assert result.returncode == 1
    assert "PyPI carries only" in result.stderr and "PIP_EXTRA_INDEX_URL=URL make setup" in result.stderr
    assert _installed(venv, TORCH_NAME) == "-"
