"""The evidence storage contract, run against both backends.

S3 is exercised through a real HTTP endpoint on loopback: moto's S3 server (a local S3
emulator from PyPI), not AWS. The store is opened by URL, exactly as `central serve
--evidence-store s3://...` opens it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.netutil import free_port, wait_for_port
from central.evidence.store import (
    EvidenceBackend,
    EvidenceIntegrityError,
    EvidenceStore,
    EvidenceStoreURLError,
    S3EvidenceStore,
    open_evidence_store,
)

BUCKET = "sharpeyes-evidence"
JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 100
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"clip" * 1000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port("127.0.0.1", port, 15, what="moto S3 server")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Credentials come from the environment, as in production; moto accepts any.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sharpeyes-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sharpeyes-test-secret")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _s3_store(endpoint: str, prefix: str) -> S3EvidenceStore:
    store = open_evidence_store(f"s3://{BUCKET}/{prefix}?endpoint_url={endpoint}&region=us-east-1")
    assert isinstance(store, S3EvidenceStore)
    try:
        store.client.create_bucket(Bucket=BUCKET)
    except store.client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return store


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceBackend:
    if request.param == "filesystem":
        return open_evidence_store(f"file://{tmp_path / 'evidence'}")
    request.getfixturevalue("s3_env")
    return _s3_store(request.getfixturevalue("s3_endpoint"), f"site-{tmp_path.name}")


def test_put_then_read_returns_the_same_bytes(store: EvidenceBackend) -> None:
    for blob in (JPEG, MP4):
        assert not store.exists(sha(blob))
        store.put(sha(blob), blob)
        assert store.exists(sha(blob))
        assert store.read(sha(blob)) == blob


def test_deferred_puts_read_back_and_sync_together(store: EvidenceBackend) -> None:
    # The ingest's burst path: blobs written side by side, made durable by one sync before the commit.
    for blob in (JPEG, MP4):
        store.put_deferred(sha(blob), blob)
    store.sync_deferred()
    assert [store.read(sha(blob)) for blob in (JPEG, MP4)] == [JPEG, MP4]


def test_unknown_blob_reads_as_none(store: EvidenceBackend) -> None:
    assert store.read("0" * 64) is None
    assert not store.exists("0" * 64)


def test_second_put_of_a_blob_keeps_one_copy(store: EvidenceBackend) -> None:
    store.put(sha(JPEG), JPEG)
    store.put(sha(JPEG), JPEG)
    assert store.read(sha(JPEG)) == JPEG


@pytest.mark.parametrize("name", ["../" * 5 + "etc/passwd", "A" * 64, "abc", ""])
def test_names_that_are_not_sha256_are_refused(store: EvidenceBackend, name: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        store.put(name, b"x")
    with pytest.raises(ValueError, match="sha256"):
        store.read(name)


def test_s3_objects_are_content_addressed_and_typed(s3_env: None, s3_endpoint: str) -> None:
    store = _s3_store(s3_endpoint, "layout")
    store.put(sha(MP4), MP4)
    head = store.client.head_object(Bucket=BUCKET, Key=f"layout/{sha(MP4)[:2]}/{sha(MP4)}")
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == len(MP4)


def test_s3_blob_altered_in_the_bucket_is_detected(s3_env: None, s3_endpoint: str) -> None:
    store = _s3_store(s3_endpoint, "tamper")
    store.put(sha(JPEG), JPEG)
    store.client.put_object(Bucket=BUCKET, Key=store.key_for(sha(JPEG)), Body=b"replaced")
    with pytest.raises(EvidenceIntegrityError, match="does not hash to its name"):
        store.read(sha(JPEG))


def test_filesystem_is_the_default_for_plain_paths(tmp_path: Path) -> None:
    for location in (tmp_path / "a", str(tmp_path / "b"), f"file://{tmp_path / 'c'}"):
        store = open_evidence_store(location)
        assert type(store) is EvidenceStore
        store.put(sha(JPEG), JPEG)
        assert store.path_for(sha(JPEG)).read_bytes() == JPEG


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/evidence", "unknown scheme 'ftp'"),
        ("s3:///prefix", "names no bucket"),
        ("s3://key:secret@bucket/prefix", "credentials do not belong in the URL"),
        ("s3://bucket/prefix?endpoint=http://x", "unknown option"),
        ("file://otherhost/evidence", "local folder"),
    ],
)
def test_unusable_urls_say_what_is_accepted(url: str, message: str) -> None:
    with pytest.raises(EvidenceStoreURLError, match=message):
        open_evidence_store(url)
