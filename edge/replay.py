"""Replaying a video file through a camera pipeline, as fast as it decodes (no real-time pacing)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.zoneconfig import CameraRules
from edge.evidence import EvidenceBlob
from edge.pipeline import CameraPipeline
from models.detector import Detector, load_detector

log = logging.getLogger(__name__)


class VideoError(Exception):
    """The video cannot be opened or read."""


def replay(
    video: Path,
    rules: CameraRules,
    *,
    site: str = "replay",
    edge: str = "replay",
    camera: str = "replay",
    detector: Detector | None = None,
    start_wall: datetime | None = None,
    evidence_dir: Path | None = None,
) -> Iterator[dict]:
    """Yield one dict per hazard event: the wire payload plus ``t``, the video time in seconds.

    The clock is the video's own timestamps, so dwell and clear times mean seconds of footage.
    ``start_wall`` is the wall-clock time given to the first frame (default: now). Episodes
    still open when the file ends get no ``end``: the hazard was still there.
    """
    import cv2

    video = Path(video)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise VideoError(f"{video}: cannot be opened as a video")
    detector = detector or load_detector(rules.model)
    base = start_wall or datetime.now(UTC)
    seq = itertools.count()
    pipeline = CameraPipeline(
        site=site, edge=edge, camera_id=camera, rules=rules, detector=detector, next_seq=lambda: next(seq)
    )
    frames = analysed = 0
    try:
        # grab() decodes without converting; only sampled frames pay for retrieve().
        while capture.grab():
            frames += 1
            t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not pipeline.due(t):
                continue
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                log.warning("%s: frame at %.3f s could not be decoded; skipped", video, t)
                continue
            analysed += 1
            for emission in pipeline.process(frame, t, base + timedelta(seconds=t)):
                if evidence_dir is not None:
                    _save(evidence_dir, emission.blobs)
                yield emission.event.to_wire_dict() | {"t": round(emission.t, 3)}
    finally:
        capture.release()
        log.info("%s: %d frames read, %d analysed at %.3g fps", video, frames, analysed, pipeline.detect_fps)
    if frames == 0:
        raise VideoError(f"{video}: no frame could be decoded")


def _save(directory: Path, blobs: list[EvidenceBlob]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for blob in blobs:
        suffix = ".jpg" if blob.content_type == "image/jpeg" else ".mp4"
        path = directory / f"{blob.sha256}{suffix}"
        if not path.exists():
            path.write_bytes(blob.data)
