"""Models from central, for an edge on any machine: the files of every model its configuration names
that it cannot load from its own store, fetched over HTTP(S) from central
(central/api/routes_model_files.py) with this edge's token.

Each file is named by its sha256. It is written to ``<store>/<sha256>.partial``; a broken connection
is retried with backoff and resumes where the partial file ends (``Range: bytes=N-``, guarded by
``If-Range`` with the sha256, so a partial file of other bytes is never continued). Before anything
is written the free disk space must hold twice what is still to come. The finished file is checked
against its sha256 before it is moved beside the others: a file that does not match is deleted and
the configuration naming it is refused (the cameras keep the model they run). Nothing already in
the store is deleted, so the model a camera ran before stays for a rollback."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from broker.cameraconfig import EdgeConfig
from broker.centrallink import CentralLink
from broker.siteconfig import SiteConfig

log = logging.getLogger(__name__)

DISK_MARGIN = 2.0  # the partial file, and room for the outbox and a model after it
CHUNK = 1 << 20


class FetchError(Exception):
    """A model that could not be brought here; the message is the problem the config reply names."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    file: str  # the name it takes in the store directory
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class RemoteModel:
    name: str
    published: bool
    entry: dict[str, Any]
    weights: RemoteFile
    classes: RemoteFile

    @classmethod
    def of(cls, data: dict[str, Any]) -> RemoteModel:
        entry = data["entry"]
        return cls(name=data["name"], published=bool(data["published"]), entry=entry,
                   weights=RemoteFile(entry["file"], data["sha256"], int(data["size"])),
                   classes=RemoteFile(data["classes"]["file"], data["classes"]["sha256"], int(data["classes"]["size"])))


def disk_problem(free: int, needed: int, margin: float = DISK_MARGIN) -> str | None:
    """Why NEEDED more bytes cannot be written where FREE bytes are left (None: they can)."""
    if needed <= 0 or free >= needed * margin:
        return None
    return (f"needs {needed / 1e6:.1f} MB ({margin:g}x with margin: {needed * margin / 1e6:.1f} MB) but only "
            f"{free / 1e6:.1f} MB are free; free disk space, then push the configuration again")


def unloadable(names: set[str]) -> dict[str, str]:
    """The models among NAMES this edge cannot load now, with the reason."""
    from models.registry import ChecksumMismatch, ModelNotFound, resolve_model

    missing = {}
    for name in sorted(names):
        try:
            resolve_model(name)
        except (ModelNotFound, ChecksumMismatch, ValueError, KeyError) as exc:
            missing[name] = str(exc)
    return missing


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelFetcher:
    def __init__(self, link: CentralLink, store: Path | None = None, *, attempts: int = 6, backoff_s: float = 0.5) -> None:
        from models.registry import store_dir

        self.link = link
        self.store = store or store_dir()
        self.attempts = attempts
        self.backoff_s = backoff_s

    def _client(self) -> httpx.Client:
        token = self.link.token()
        if token is None:
            raise FetchError(f"central: the environment variable {self.link.token_env} holding this edge's token is not "
                             "set (fix: `sharpeyes central edge-token EDGE` at central, export it here)")
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.link.ca_file) if self.link.ca_file else True
        return httpx.Client(base_url=self.link.url, timeout=self.link.timeout_s, verify=verify,
                            headers={"Authorization": f"Bearer {token}"})

    def _retrying(self, what: str, attempt: int, exc: Exception) -> None:
        if attempt + 1 >= self.attempts:
            raise FetchError(f"{what}: central at {self.link.url} did not answer after {self.attempts} tries ({exc})") from None
        delay = self.backoff_s * 2 ** attempt
        log.warning("%s: %s; trying again in %.1f s", what, exc, delay)
        time.sleep(delay)

    def manifest(self, client: httpx.Client) -> tuple[dict[str, RemoteModel], list[str]]:
        for attempt in range(self.attempts):
            try:
                answer = client.get("/api/v1/edge/models")
            except httpx.TransportError as exc:
                self._retrying("the list of this edge's models", attempt, exc)
                continue
            if answer.status_code >= 500:
                self._retrying("the list of this edge's models", attempt, RuntimeError(f"HTTP {answer.status_code}"))
                continue
            if answer.status_code != 200:
                raise FetchError(f"central refused the list of this edge's models: HTTP {answer.status_code} "
                                 f"{answer.text[:200]}")
            body = answer.json()
            return {m["name"]: RemoteModel.of(m) for m in body["models"]}, list(body.get("problems", []))
        raise AssertionError("unreachable")

    def ensure(self, names: set[str]) -> list[str]:
        """Bring every model of NAMES that cannot be loaded here from central; one problem per model
        that still cannot be (empty: all of them load now)."""
        missing = unloadable(names)
        if not missing:
            return []
        try:
            with self._client() as client:
                remote, central_problems = self.manifest(client)
                problems = []
                for name, reason in missing.items():
                    try:
                        self._bring(client, name, reason, remote.get(name), central_problems)
                    except FetchError as exc:
                        log.warning("model %s refused: %s", name, exc)
                        problems.append(f"model {name}: {exc}")
                return problems
        except FetchError as exc:
            return [f"model {name}: not loadable here ({reason}), and {exc}" for name, reason in missing.items()]

    def _bring(self, client: httpx.Client, name: str, reason: str, model: RemoteModel | None,
               central_problems: list[str]) -> None:
        from models.registry import ModelEntry, load_published, register_in_store

        if model is None:
            said = "; ".join(p for p in central_problems if name in p) or "central does not assign it to this edge's cameras"
            raise FetchError(f"not loadable here ({reason}), and {said}")
        if model.published:
            known = next((m for m in load_published().models if m.name == name), None)
            if known is None or known.sha256 != model.weights.sha256:
                raise FetchError(f"central serves sha256 {model.weights.sha256} as the published model {name}, this "
                                 f"edge's registry.yaml pins {known.sha256 if known else 'no such model'}: run the same release")
        entry = ModelEntry.model_validate(model.entry)
        files = [f for f in (model.weights, model.classes) if not self._present(f)]
        self.store.mkdir(parents=True, exist_ok=True)
        if problem := disk_problem(shutil.disk_usage(self.store).free, sum(f.size for f in files)):
            raise FetchError(f"{self.store}: {problem}")
        for remote_file in files:
            self.download(client, remote_file)
        if not model.published:
            register_in_store(entry, model.classes.sha256)
        if still := unloadable({name}):
            raise FetchError(f"fetched, but still not loadable: {still[name]}")
        log.info("model %s (sha256 %s) fetched from central and registered in %s", name, model.weights.sha256, self.store)

    def _present(self, remote_file: RemoteFile) -> bool:
        path = self.store / remote_file.file
        return path.is_file() and path.stat().st_size == remote_file.size and _file_sha256(path) == remote_file.sha256

    def download(self, client: httpx.Client, remote_file: RemoteFile) -> Path:
        """One file into the store, resumed after a broken connection and checked against its sha256."""
        sha = remote_file.sha256
        partial = self.store / f"{sha}.partial"
        started, fetched, requests = time.monotonic(), 0, 0
        for attempt in range(self.attempts):
            offset = partial.stat().st_size if partial.exists() else 0
            if offset > remote_file.size:
                partial.unlink()
                offset = 0
            if offset == remote_file.size:
                break
            headers = {"Range": f"bytes={offset}-", "If-Range": f'"{sha}"'} if offset else {}
            if offset:
                log.info("resuming %s at byte %d of %d", sha, offset, remote_file.size)
            requests += 1
            try:
                with client.stream("GET", f"/api/v1/edge/models/{sha}", headers=headers) as answer:
                    if answer.status_code in (401, 403, 404):
                        raise FetchError(f"central refused file {sha}: HTTP {answer.status_code}")
                    resumed = answer.status_code == 206 and answer.headers.get("content-range", "").startswith(
                        f"bytes {offset}-")
                    if answer.status_code in (206, 416) and not resumed:  # not the part asked for: start again
                        partial.unlink(missing_ok=True)
                        self._retrying(f"file {sha}", attempt, RuntimeError(f"HTTP {answer.status_code}"))
                        continue
                    if answer.status_code >= 500:
                        self._retrying(f"file {sha}", attempt, RuntimeError(f"HTTP {answer.status_code}"))
                        continue
                    if answer.status_code not in (200, 206):
                        raise FetchError(f"central answered HTTP {answer.status_code} for file {sha}")
                    with partial.open("ab" if resumed else "wb") as fh:
                        # As received, not re-chunked: a chunker would hold back the bytes before a break.
                        for chunk in answer.iter_bytes():
                            fh.write(chunk)
                            fetched += len(chunk)
                        fh.flush()
                        os.fsync(fh.fileno())
            except httpx.TransportError as exc:
                self._retrying(f"file {sha}", attempt, exc)
                continue
            if partial.stat().st_size >= remote_file.size:
                break
        else:
            raise FetchError(f"file {sha}: incomplete after {self.attempts} tries")
        actual = _file_sha256(partial)
        if actual != sha:
            partial.unlink()
            raise FetchError(f"the file central sent for sha256 {sha} has sha256 {actual} (corrupted in transit "
                             "or at central): deleted, and refused")
        target = self.store / remote_file.file
        os.replace(partial, target)
        seconds = max(time.monotonic() - started, 1e-6)
        log.info("fetched %s (%d bytes; %d received in %d request(s)) in %.2f s: %.1f MB/s", target.name,
                 remote_file.size, fetched, requests, seconds, fetched / seconds / 1e6)
        return target


def bring_models(site: SiteConfig, edge: EdgeConfig, *, override: str | None = None) -> list[str]:
    """Fetch from central (the site's ``central:``) the models EDGE's cameras name that this edge
    cannot load; the problems of those it could not bring. Without ``central:`` nothing is fetched
    (the caller's own check names what is missing)."""
    if site.central is None:
        return []
    names = {override} if override else {c.model for c in edge.cameras}
    return ModelFetcher(site.central).ensure(names)
