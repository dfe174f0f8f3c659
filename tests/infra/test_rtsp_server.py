"""The RTSP footage server: real RTSP over loopback, read by OpenCV exactly as the edge reads cameras."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sharpeyes.rtsp_server import FootageServer, FootageServerError, place_file
from tests.support import open_rtsp_capture

SHORT_CLIP = "lot_person_bicycle_car.mp4"  # 34 frames, 3.4 s: cheap to play past its end


def test_street_clip_frames_arrive_over_rtsp(rtsp_server: FootageServer) -> None:
    url = rtsp_server.url("street_parked_cars_720p.mp4")
    assert url == f"rtsp://127.0.0.1:{rtsp_server.port}/street_parked_cars_720p.mp4"
    cap = open_rtsp_capture(url)
    try:
        assert cap.isOpened(), f"OpenCV could not open {url}\n{rtsp_server.log_tail()}"
        frames = []
        for _ in range(5):
            ok, frame = cap.read()
            assert ok
            frames.append(frame)
        assert frames[-1].shape == (720, 1280, 3)
        assert frames[-1].std() > 10  # a picture, not a blank frame
    finally:
        cap.release()


def test_stream_loops_past_the_end_of_the_clip(rtsp_server: FootageServer) -> None:
    cap = open_rtsp_capture(rtsp_server.url(SHORT_CLIP))
    try:
        frames = 0
        deadline = time.monotonic() + 20
        while frames < 50 and time.monotonic() < deadline:
            ok = cap.grab()
            assert ok, f"stream ended after {frames} frames\n{rtsp_server.log_tail()}"
            frames += 1
    finally:
        cap.release()
    assert frames == 50  # the clip has only 34
    assert f"loop=2 source={SHORT_CLIP}" in rtsp_server.log_path.read_text()


def test_unknown_stream_name_is_a_clear_error(rtsp_server: FootageServer) -> None:
    with pytest.raises(KeyError, match="does not serve 'nope.mp4'"):
        rtsp_server.url("nope.mp4")


def _private_server(shared_media: Path, tmp_path: Path) -> FootageServer:
    return FootageServer({"cam.mp4": shared_media / SHORT_CLIP}, workdir=tmp_path / "rtsp")


def test_stop_makes_reads_fail(shared_media: Path, tmp_path: Path) -> None:
    with _private_server(shared_media, tmp_path) as server:
        cap = open_rtsp_capture(server.url("cam.mp4"), read_timeout_ms=2000)
        assert cap.grab()
        server.stop()
        started = time.monotonic()
        while cap.grab():  # frames already buffered by FFmpeg drain first
            assert time.monotonic() - started < 15, "reads kept succeeding after the server stopped"
        cap.release()
        assert not server.running


def test_pause_stalls_the_stream_until_resume(shared_media: Path, tmp_path: Path) -> None:
    with _private_server(shared_media, tmp_path) as server:
        cap = open_rtsp_capture(server.url("cam.mp4"), read_timeout_ms=2000)
        assert cap.grab()
        server.pause()
        started = time.monotonic()
        while cap.grab():
            assert time.monotonic() - started < 20, "reads kept succeeding while the server was paused"
        cap.release()
        server.resume()
        cap = open_rtsp_capture(server.url("cam.mp4"))
        try:
            assert cap.grab(), f"no frames after resume\n{server.log_tail()}"
        finally:
            cap.release()


def test_restart_serves_on_the_same_port(shared_media: Path, tmp_path: Path) -> None:
    with _private_server(shared_media, tmp_path) as server:
        port = server.port
        server.kill()
        server.start()
        assert server.port == port
        cap = open_rtsp_capture(server.url("cam.mp4"))
        try:
            assert cap.grab()
        finally:
            cap.release()


def test_files_are_hard_linked_not_symlinked(tmp_path: Path) -> None:
    source = tmp_path / "src.mp4"
    source.write_bytes(b"not really a video")
    target = tmp_path / "placed.mp4"
    place_file(source, target)
    assert not target.is_symlink()  # the toolkit's server refuses paths that resolve elsewhere
    assert os.stat(target).st_ino == os.stat(source).st_ino


def test_files_are_copied_when_hard_links_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    source = tmp_path / "src.mp4"
    source.write_bytes(b"bytes")
    place_file(source, tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == b"bytes"


def test_missing_footage_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FootageServerError, match="not found"):
        FootageServer({"cam.mp4": tmp_path / "missing.mp4"})


def test_a_port_taken_before_start_is_chosen_again(shared_media: Path, tmp_path: Path) -> None:
    """A bench picks every server's port up front; by the time a server starts, a client connection
    or another server may hold it. The server picks a new port instead of failing the run."""
    import socket

    server = _private_server(shared_media, tmp_path)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", server.port))  # bound, not listening: the server's bind fails, a connect is refused
    taken = server.port
    try:
        with server:
            assert server.port != taken
            cap = open_rtsp_capture(server.url("cam.mp4"))
            try:
                assert cap.grab(), server.log_tail()
            finally:
                cap.release()
            assert "already in use" in server.log_path.read_text()
    finally:
        squatter.close()
