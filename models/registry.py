"""The model registry and weight resolution (sha256-checked)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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
    # A model trained here (`sharpeyes models train`): base, dataset manifest hash, settings, split and
    # held-out figures, as models/training.py records them. None for the published models.
    trained: dict[str, Any] | None = None


class WeightEntry(BaseModel):
    """A network that is not a hazard detector (the face detector for redaction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str
    sha256: str
    licence: str
    source: str


class BaseEntry(BaseModel):
    """A starting point for `sharpeyes models train`: an Ultralytics architecture and its weights,
    either a vetted checkpoint (``checkpoint`` + ``checkpoint_sha256``, models/checkpoint.py) or,
    where none could be brought here, rebuilt from a registered export (``rebuilt_from``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    architecture: str
    rebuilt_from: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    verified: str


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[ModelEntry]
    class_files: dict[str, str]
    weights: list[WeightEntry] = []
    bases: list[BaseEntry] = []

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


class LocalStore(BaseModel):
    """STORE_FILE in the local model directory: the models trained on this machine (never in git)."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = []
    class_files: dict[str, str] = {}


def store_dir() -> Path:
    """The local model directory: trained models are written here ($SHARPEYES_MODEL_DIR or models/weights)."""
    env = os.environ.get("SHARPEYES_MODEL_DIR")
    return Path(env) if env else PACKAGE_DIR / "weights"


STORE_FILE = "store.yaml"


def load_store() -> LocalStore:
    path = store_dir() / STORE_FILE
    if not path.is_file():
        return LocalStore()
    return LocalStore.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def save_store(store: LocalStore) -> Path:
    path = store_dir() / STORE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(yaml.safe_dump(store.model_dump(mode="json", exclude_none=True), sort_keys=False),
                         encoding="utf-8")
    temporary.replace(path)
    return path


def save_trained_record(name: str, record: dict[str, Any]) -> ModelEntry:
    """Replace the ``trained`` record of NAME, a model in the local store (the published models have
    none); the store is read again first, so an entry registered meanwhile is kept."""
    store = load_store()
    entry = next((m for m in store.models if m.name == name), None)
    if entry is None:
        raise ModelNotFound(f"{name!r} is not a model trained here (models in the store: {[m.name for m in store.models]})")
    updated = entry.model_copy(update={"trained": record})
    save_store(store.model_copy(update={"models": [updated if m.name == name else m for m in store.models]}))
    return updated


def load_registry() -> Registry:
    """The published models (registry.yaml) and the ones trained on this machine (the store). A
    long-running edge sees a model registered after it started, since the store is read again
    whenever it changed."""
    store = store_dir() / STORE_FILE
    stat = store.stat() if store.is_file() else None
    # The size too: two writes within one tick of the file system's clock share a modification time.
    return _registry(store, stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@lru_cache(maxsize=4)
def _registry(store_path: Path, store_mtime_ns: int, store_size: int) -> Registry:
    published = load_published()
    local = load_store()
    taken = {m.name for m in published.models}
    clashes = [m.name for m in local.models if m.name in taken]
    if clashes:
        raise ValueError(f"{store_path}: {', '.join(clashes)} is a published model's name; rename it in that file")
    return published.model_copy(update={"models": [*published.models, *local.models],
                                        "class_files": {**published.class_files, **local.class_files}})


# The development and CI folder of the published weights; set empty, an edge searches no such folder
# (what an edge on another machine is like: its models come from its own store or from central).
SHARED_MODELS_ENV = "SHARPEYES_SHARED_MODEL_DIR"


def search_dirs() -> list[Path]:
    """Where weights are looked for, in order: the project's model directory, then ../shared/models."""
    dirs = [store_dir()]
    if store_dir() != PACKAGE_DIR / "weights":
        dirs.append(PACKAGE_DIR / "weights")
    shared = os.environ.get(SHARED_MODELS_ENV)
    if shared is None:
        dirs.append(PROJECT_ROOT.parent / "shared" / "models")
    elif shared:
        dirs.append(Path(shared))
    return dirs


def load_published() -> Registry:
    """registry.yaml alone: the models every edge knows by name and sha256 without a store entry."""
    return Registry.model_validate(yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8")))


def register_in_store(entry: ModelEntry, classes_sha256: str) -> Path:
    """Add ENTRY (a model brought here, e.g. from central) to the local store, replacing an entry of
    the same name; the store is read again first, so an entry registered meanwhile is kept. Its
    files must already be in the store directory under ``entry.file`` and ``entry.classes``."""
    store = load_store()
    models = [m for m in store.models if m.name != entry.name]
    return save_store(store.model_copy(update={"models": [*models, entry],
                                               "class_files": {**store.class_files, entry.classes: classes_sha256}}))


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


def resolve_file(path: Path) -> ResolvedModel:
    """An Ultralytics YOLOv8 ONNX export given as a file (``--model path/to/model.onnx``): its class
    names and input size from the metadata Ultralytics embeds, its sha256 computed. For trying a model
    before registering it; a camera's model should be a registered name (sha256-pinned)."""
    import ast

    import onnx

    if not path.is_file():
        raise ModelNotFound(f"{path}: no such file")
    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        names = ast.literal_eval(meta["names"])
        size = ast.literal_eval(meta["imgsz"])
    except (KeyError, ValueError, SyntaxError) as exc:
        raise ModelNotFound(f"{path}: not an Ultralytics ONNX export with names and imgsz metadata ({exc}); "
                            "register it in models/registry.yaml with its classes file instead") from None
    except Exception as exc:  # noqa: BLE001 - onnx raises its own decode errors for a file that is no model
        raise ModelNotFound(f"{path}: not an ONNX model ({exc})") from None
    entry = ModelEntry(name=path.stem, file=str(path), sha256=sha256_file(path), input_size=(int(size[1]), int(size[0])),
                       decoder="yolov8", color="rgb", licence="unknown (a file given by path)", classes="(metadata)",
                       providers="any")
    return ResolvedModel(entry=entry, path=path, class_names=tuple(str(names[i]) for i in range(len(names))))


def resolve_model(name: str) -> ResolvedModel:
    """A registered model by name, or an Ultralytics ONNX export given as a path ending in .onnx."""
    if name.endswith(".onnx"):
        return resolve_file(Path(name))
    registry = load_registry()
    entry = registry.get(name)
    path = _resolve(entry.file, entry.sha256)
    names_path = _resolve(entry.classes, registry.class_files[entry.classes])
    names = tuple(line.strip() for line in names_path.read_text(encoding="utf-8").splitlines() if line.strip())
    return ResolvedModel(entry=entry, path=path, class_names=names)


def resolve_class_file(entry: ModelEntry) -> tuple[Path, str]:
    """The checked class-names file of a registered model, and its sha256."""
    expected = load_registry().class_files[entry.classes]
    return _resolve(entry.classes, expected), expected


def resolve_weight(name: str) -> Path:
    """The checked file of a non-detector network listed under ``weights:`` in the registry."""
    registry = load_registry()
    for entry in registry.weights:
        if entry.name == name:
            return _resolve(entry.file, entry.sha256)
    raise ModelNotFound(f"{name!r} is not under weights: in {REGISTRY_FILE}")
