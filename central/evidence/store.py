"""Content-addressed evidence blobs behind one small interface, chosen by URL.

- a plain path or ``file:///path``: `EvidenceStore`, files ``<root>/<sha[:2]>/<sha>`` written
  atomically, once (the default: one machine, one disk);
- ``s3://bucket/prefix?endpoint_url=https://...&region=...``: `S3EvidenceStore`, objects
  ``<prefix>/<sha[:2]>/<sha>`` in any S3-compatible service (AWS S3, MinIO, Ceph RGW, OSS with S3
  API; the tests run it against SeaweedFS's S3 gateway). Credentials come from the environment
  the usual boto3 way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or an instance role),
  never from the URL.

Blobs are named by their sha256, so a write is idempotent and a read can be checked.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import sys
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from broker.topics import SHA256_RE


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff_content_type(data: bytes) -> str:
    """Best guess before the event naming the blob arrives; the event's declared type wins later."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"


def _check_sha(sha256: str) -> None:
    # The name is checked so that a crafted value can never point outside the store.
    if not SHA256_RE.match(sha256):
        raise ValueError(f"{sha256!r} is not a lower-case hex sha256")


def _syncfs(folder: Path) -> None:
    """Flush the filesystem holding `folder` (Linux syncfs(2); elsewhere sync(2), every filesystem)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _LIBC is None:
            os.sync()
        elif _LIBC.syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs {folder}: {os.strerror(errno)}")
    finally:
        os.close(fd)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """An evidence blob already checked against its name and written (durable only after the
    store's `sync_deferred`): what central's receiving process hands the writer instead of the bytes."""

    sha256: str
    size: int
    sniffed_type: str


def store_checked(store: EvidenceBackend, sha256: str, data: bytes) -> StoredBlob | None:
    """Write `data` as blob `sha256` without syncing it; None (nothing written) when it is empty
    or does not hash to its name, which the writer then dead-letters with the reason."""
    if not data or sha256_hex(data) != sha256:
        return None
    store.put_deferred(sha256, data)
    return StoredBlob(sha256, len(data), sniff_content_type(data))


class EvidenceIntegrityError(RuntimeError):
    """A stored blob's bytes no longer hash to its name."""


class EvidenceBackend(ABC):
    """What ingest and the API need from evidence storage."""

    @abstractmethod
    def put(self, sha256: str, data: bytes) -> object:
        """Store the blob unless it is already there; the caller has checked the hash."""

    @abstractmethod
    def read(self, sha256: str) -> bytes | None:
        """The blob's bytes, or None when it is not stored."""

    def exists(self, sha256: str) -> bool:
        return self.read(sha256) is not None

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob (the retention purge); absent already is fine."""

    def put_deferred(self, sha256: str, data: bytes) -> object:
        """Like put, but the blob may be durable only once `sync_deferred` has returned."""
        return self.put(sha256, data)

    def sync_deferred(self) -> None:  # noqa: B027 - optional hook: a backend whose put is durable has nothing to do
        """Make every blob stored with `put_deferred` so far durable."""

    @abstractmethod
    def describe(self) -> str:
        """Where blobs go, for logs (no credentials)."""


class EvidenceStore(EvidenceBackend):
    """The filesystem backend."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._folders: set[str] = set()

    def describe(self) -> str:
        return f"files under {self.root}"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def path_for(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        """Write the blob unless it is already there; the caller has checked the hash."""
        return self._write(sha256, data, fsync=True)

    def put_deferred(self, sha256: str, data: bytes) -> Path:
        return self._write(sha256, data, fsync=False)

    def sync_deferred(self) -> None:
        # One syncfs for a burst's blobs instead of an fsync each: it writes their data and the
        # renames that name them (which a file's own fsync leaves to the next journal commit).
        _syncfs(self.root)

    def _write(self, sha256: str, data: bytes, fsync: bool) -> Path:
        # Plain os calls, a folder made once per process and a temporary name of our own: at a
        # thousand blobs a second, pathlib, mkstemp and makedirs cost ten times the write itself.
        path = self.path_for(sha256)
        folder, target = str(path.parent), str(path)
        try:
            if os.stat(target).st_size == len(data):
                return path
        except FileNotFoundError:
            pass
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        tmp = f"{folder}/.tmp-{sha256}-{os.getpid()}-{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            if fsync:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, target)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return path

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_for(sha256))


class S3EvidenceStore(EvidenceBackend):
    """Objects in an S3-compatible bucket; `client` is a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key_for(self, sha256: str) -> str:
        _check_sha(sha256)
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", "")
        return f"s3://{self.bucket}/{self.prefix} at {endpoint}"

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except ClientError as exc:
            if self._missing(exc):
                return False
            raise
        return True

    def put(self, sha256: str, data: bytes) -> str:
        key = self.key_for(sha256)
        # Content-addressed: an object under this key already holds these bytes, so the (re)delivery
        # of a blob costs one HEAD instead of a second upload.
        if not self.exists(sha256):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=sniff_content_type(data))
        return key

    def read(self, sha256: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        data: bytes = response["Body"].read()
        if sha256_hex(data) != sha256:
            raise EvidenceIntegrityError(f"s3://{self.bucket}/{self.key_for(sha256)} does not hash to its name")
        return data

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key_for(sha256))  # S3: absent is no error


class EvidenceStoreURLError(ValueError):
    """An evidence store URL that cannot be used; the message shows the accepted forms."""


_FORMS = "use a folder path, file:///folder, or s3://bucket/prefix?endpoint_url=https://host:port&region=REGION"


def open_evidence_store(location: Path | str) -> EvidenceBackend:
    """The backend for `location`: a path / file:// URL (filesystem) or an s3:// URL."""
    if isinstance(location, Path):
        return EvidenceStore(location)
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            raise EvidenceStoreURLError(f"{location!r}: file URLs name a local folder ({_FORMS})")
        path = unquote(parts.path) if parts.scheme == "file" else location
        if not path:
            raise EvidenceStoreURLError(f"{location!r} names no folder ({_FORMS})")
        return EvidenceStore(path)
    if parts.scheme != "s3":
        raise EvidenceStoreURLError(f"{location!r}: unknown scheme {parts.scheme!r} ({_FORMS})")
    if not parts.netloc:
        raise EvidenceStoreURLError(f"{location!r} names no bucket ({_FORMS})")
    if parts.username or parts.password:
        raise EvidenceStoreURLError(
            f"s3://{parts.hostname}/...: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in the environment"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"endpoint_url", "region"}
    if unknown:
        raise EvidenceStoreURLError(f"{location!r}: unknown option(s) {', '.join(sorted(unknown))} ({_FORMS})")
    import boto3
    from botocore.config import Config

    # A session of its own: boto3's module-level default session is not thread-safe and keeps the
    # credentials it first found for the life of the process.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=query.get("endpoint_url"),
        region_name=query.get("region"),
        # Path-style addressing and checksums only when required: what MinIO, Ceph and other
        # S3-compatible services accept, not only AWS.
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      retries={"max_attempts": 5, "mode": "standard"}),
    )
    return S3EvidenceStore(client, parts.netloc, unquote(parts.path))
