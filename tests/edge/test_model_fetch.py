"""The edge's model download (edge/model_fetch.py) on its own: the disk-space decision, resuming a
broken transfer where the partial file ends, and refusing bytes that are not the sha256 asked for.
Central's side is played by an httpx transport in this process (no sockets); the real chain with
central, a proxy that cuts and corrupts, and `edge run` is tests/integration/test_model_delivery.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from broker.centrallink import CentralLink
from edge.model_fetch import FetchError, ModelFetcher, RemoteFile, disk_problem

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_disk_space_must_hold_twice_what_is_coming() -> None:
    assert disk_problem(free=10_000_000, needed=5_000_000) is None
    assert disk_problem(free=0, needed=0) is None
    problem = disk_problem(free=9_000_000, needed=5_000_000)
    assert problem is not None and "needs 5.0 MB" in problem and "9.0 MB are free" in problem


def _fetcher(tmp_path: Path) -> ModelFetcher:
    return ModelFetcher(CentralLink(url="http://central.test"), tmp_path / "store", attempts=3, backoff_s=0.01)


def test_a_broken_transfer_resumes_with_a_range_request(tmp_path: Path) -> None:
    asked: list[str | None] = []

    def central(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("range"))
        if len(asked) == 1:  # the first answer breaks off after 100,000 bytes
            def broken():  # type: ignore[no-untyped-def]
                yield DATA[:100_000]
                raise httpx.RemoteProtocolError("peer closed connection")
            return httpx.Response(200, headers={"Content-Length": str(len(DATA))}, content=broken())
        start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
        assert request.headers["if-range"] == f'"{SHA}"'
        return httpx.Response(206, content=DATA[start:],
                              headers={"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"})

    fetcher = _fetcher(tmp_path)
    fetcher.store.mkdir(parents=True)
    with httpx.Client(base_url="http://central.test", transport=httpx.MockTransport(central)) as client:
        path = fetcher.download(client, RemoteFile("m.onnx", SHA, len(DATA)))
    assert asked == [None, "bytes=100000-"]
    assert path.read_bytes() == DATA and not list(fetcher.store.glob("*.partial"))


def test_bytes_that_are_not_the_sha256_asked_for_are_deleted_and_refused(tmp_path: Path) -> None:
    bad = bytearray(DATA)
    bad[12345] ^= 0xFF
    fetcher = _fetcher(tmp_path)
    fetcher.store.mkdir(parents=True)
    (fetcher.store / "m.onnx").write_bytes(b"the model a camera runs now")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=bytes(bad)))
    with httpx.Client(base_url="http://central.test", transport=transport) as client, \
            pytest.raises(FetchError, match=f"sha256 {SHA} has sha256 {hashlib.sha256(bad).hexdigest()}"):
        fetcher.download(client, RemoteFile("m.onnx", SHA, len(DATA)))
    assert sorted(p.name for p in fetcher.store.iterdir()) == ["m.onnx"]  # nothing else kept, nothing replaced
    assert (fetcher.store / "m.onnx").read_bytes() == b"the model a camera runs now"


def test_without_its_token_the_edge_says_which_variable_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARPEYES_EDGE_TOKEN", raising=False)
    monkeypatch.setenv("SHARPEYES_MODEL_DIR", str(tmp_path / "store"))
    [problem] = _fetcher(tmp_path).ensure({"no-such-model"})
    assert "SHARPEYES_EDGE_TOKEN" in problem and "edge-token" in problem
