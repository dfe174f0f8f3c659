"""The model registry and weight resolution (sha256-checked)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
REGISTRY_FILE = PACKAGE_DIR / "registry.yaml"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str
    sha256: str
    input_size: tuple[int, int]
    decoder: Literal["yolov8", "yolox"]
    color: Literal["rgb", "bgr"]
    licence: str
    classes: str
    providers: Literal["any", "cpu"]


class WeightEntry(BaseModel):
    """A network that is not a hazard detector (the face detector for redaction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str
    sha256: str
    licence: str
    source: str


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[ModelEntry]
    class_files: dict[str, str]
    weights: list[WeightEntry] = []

    def get(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        known = ", ".join(m.name for m in self.models)
        raise ModelNotFound(f"model {name!r} is not in the registry {REGISTRY_FILE} (known: {known})")


class ModelNotFound(LookupError):
    pass


class ChecksumMismatch(ValueError):
    pass


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    return Registry.model_validate(yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8")))


def search_dirs() -> list[Path]:
    """Where weights are looked for, in order: the project's model directory, then ../shared/models."""
    dirs = []
    if env := os.environ.get("SHARPEYES_MODEL_DIR"):
        dirs.append(Path(env))
    dirs.append(PACKAGE_DIR / "weights")
    dirs.append(PROJECT_ROOT.parent / "shared" / "models")
    return dirs


@lru_cache(maxsize=64)
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path.resolve(), stat.st_mtime_ns, stat.st_size)


def _resolve(file: str, expected_sha: str) -> Path:
    tried = []
    for directory in search_dirs():
        candidate = directory / file
        tried.append(str(candidate))
        if candidate.is_file():
            actual = sha256_file(candidate)
            if actual != expected_sha:
                raise ChecksumMismatch(
                    f"{candidate} has sha256 {actual}, but the registry expects {expected_sha}; "
                    "replace the file with the published weights or update models/registry.yaml"
                )
            return candidate
    raise ModelNotFound(
        f"{file} was not found; looked in: {', '.join(tried)}. Export or copy the weights into "
        f"{PACKAGE_DIR / 'weights'} (or set SHARPEYES_MODEL_DIR)"
    )


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    entry: ModelEntry
    path: Path
    class_names: tuple[str, ...]


def resolve_model(name: str) -> ResolvedModel:
    registry = load_registry()
    entry = registry.get(name)
    path = _resolve(entry.file, entry.sha256)
    names_path = _resolve(entry.classes, registry.class_files[entry.classes])
    names = tuple(line.strip() for line in names_path.read_text(encoding="utf-8").splitlines() if line.strip())
    return ResolvedModel(entry=entry, path=path, class_names=names)


def resolve_weight(name: str) -> Path:
    """The checked file of a non-detector network listed under ``weights:`` in the registry."""
    registry = load_registry()
    for entry in registry.weights:
        if entry.name == name:
            return _resolve(entry.file, entry.sha256)
    raise ModelNotFound(f"{name!r} is not under weights: in {REGISTRY_FILE}")
