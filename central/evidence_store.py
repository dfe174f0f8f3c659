"""Content-addressed evidence files: ``<root>/<sha[:2]>/<sha>``, written atomically, once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

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


class EvidenceStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        # The name is checked so that a crafted value can never point outside the store.
        if not SHA256_RE.match(sha256):
            raise ValueError(f"{sha256!r} is not a lower-case hex sha256")
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        """Write the blob unless it is already there; the caller has checked the hash."""
        path = self.path_for(sha256)
        if path.exists() and path.stat().st_size == len(data):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            return None
