"""Evidence clips cut from the camera's ring of encoded packets: stream copy into MP4, no re-encode."""

from __future__ import annotations

import io
import logging
from typing import Any

log = logging.getLogger(__name__)


class ClipError(RuntimeError):
    pass


def detached_template(stream: Any) -> Any:
    """A stream that carries ``stream``'s codec parameters and outlives its container.

    A camera's stream belongs to its input container, which is closed on every reconnect while
    clips of the old connection's packets may still be cut: a template read after that close
    reads freed memory (under load this crashed the edge in PyAV's stream code). The copy is an
    output stream of an in-memory MP4 that is never written; the stream keeps that container alive."""
    import av

    holder = av.open(io.BytesIO(), "w", format="mp4")
    return holder.add_stream_from_template(stream)


def mux_mp4(template_stream: Any, packets: list[Any]) -> bytes:
    """An MP4 of ``packets`` (starting at a keyframe) with timestamps rebased to zero.

    The ring's packets are shared with later clips, so each is copied before its timestamps change.
    """
    import av

    usable = [p for p in packets if p.dts is not None and p.pts is not None]
    if template_stream is None or not usable or not usable[0].is_keyframe:
        raise ClipError("no keyframe-led packets in the ring for this interval")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream_from_template(template_stream)
        base = usable[0].dts
        last_dts = None
        skipped = 0
        for source in usable:
            packet = av.Packet(bytes(source))
            packet.pts = source.pts - base
            packet.dts = source.dts - base
            if last_dts is not None and packet.dts <= last_dts:
                continue  # a reconnect can repeat timestamps; the muxer refuses them
            last_dts = packet.dts
            packet.time_base = source.time_base
            packet.is_keyframe = source.is_keyframe
            packet.stream = stream
            try:
                output.mux(packet)
            except (av.error.ArgumentError, av.error.InvalidDataError):
                skipped += 1  # a packet the muxer refuses (e.g. around a stream restart) is left out
    if skipped:
        log.info("clip: %d of %d packets left out", skipped, len(usable))
    return buffer.getvalue()
