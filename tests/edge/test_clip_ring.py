"""Alarms on a loaded box keep their clip: the camera's packet ring holds the alarm's seconds until
its clip is cut, however late the worker gets to it (within ``hold_max_s``), and a clip that still
cannot be cut says why. Real H.264 packets of the street clip, fed as the reader feeds them."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from edge.camera import CameraReader
from edge.clip import mux_mp4

_RING_S = 13.0  # clip_pre_s + clip_post_s + 3, as the worker sizes it


@pytest.fixture(scope="module")
def packets(shared_media: Path) -> tuple[object, list[tuple[float, av.Packet]]]:
    container = av.open(str(shared_media / "street_parked_cars_720p.mp4"))
    stream = container.streams.video[0]
    out = [(float(p.pts * stream.time_base), p) for p in container.demux(stream) if p.dts is not None]
    return stream, out


def _feed(reader: CameraReader, stream: object, packets, until: float, hold_at: float | None = None) -> None:
    reader._stream_template = stream
    for t, packet in packets:
        if t > until:
            break
        if hold_at is not None and t >= hold_at:
            reader.hold("alarm", hold_at - 5.0)
            hold_at = None
        reader._remember(t, packet)


def _clip_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as clip:
        time_base = clip.streams.video[0].time_base
        pts = [f.pts for f in clip.decode(video=0)]
    return float(pts[-1] * time_base)


def test_a_clip_cut_late_on_a_busy_box_still_has_its_seconds(packets):
    stream, items = packets
    # The alarm's frame arrived at 12 s; the worker gets to cut its 5 s + 5 s clip at 40 s.
    unheld = CameraReader("c", "rtsp://127.0.0.1/c", ring_seconds=_RING_S)
    _feed(unheld, stream, items, until=40.0)
    assert unheld.packets_between(7.0, 17.0)[1] == [], "without a hold the ring has dropped those seconds"

    held = CameraReader("c", "rtsp://127.0.0.1/c", ring_seconds=_RING_S)
    _feed(held, stream, items, until=40.0, hold_at=12.0)
    template, clip_packets = held.packets_between(7.0, 17.0)
    assert clip_packets and clip_packets[0].is_keyframe
    assert _clip_seconds(mux_mp4(template, clip_packets)) >= 9.5

    held.release("alarm")
    _feed(held, stream, [(t + 47.0, p) for t, p in items[:5]], until=99.0)
    span = held.ring_span()
    assert span is not None and span[0] >= 47.0 - _RING_S, "released: the ring shrinks back to its length"


def test_a_hold_is_bounded(packets):
    stream, items = packets
    reader = CameraReader("c", "rtsp://127.0.0.1/c", ring_seconds=_RING_S, hold_max_s=10.0)
    _feed(reader, stream, items, until=46.0, hold_at=5.0)
    span = reader.ring_span()
    assert span is not None and span[0] >= 46.0 - _RING_S - 10.0 - 0.1


def test_a_clip_of_a_closed_connection_still_muxes(shared_media: Path):
    """A camera reconnects (its container is closed) while an alarm's clip of the old connection's
    packets waits to be cut: the clip is still whole. Reading the closed container's stream instead
    crashed the edge under load."""
    reader = CameraReader("c", "rtsp://127.0.0.1/c", ring_seconds=_RING_S)
    container = av.open(str(shared_media / "street_parked_cars_720p.mp4"))
    stream = container.streams.video[0]
    reader._adopt(stream)
    last = 0.0
    for packet in container.demux(stream):
        if packet.dts is not None:
            last = float(packet.pts * stream.time_base)
            reader._remember(last, packet)
    container.close()
    template, clip_packets = reader.packets_between(last - 8.0, last)
    assert _clip_seconds(mux_mp4(template, clip_packets)) >= 7.5
