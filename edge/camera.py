"""One RTSP camera: a reader thread that always keeps only the newest decoded frame,
a watchdog on the time since the last frame, and reconnects with capped backoff."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from edge.backoff import Backoff

log = logging.getLogger("sharpeyes.edge.camera")

# TCP interleaving survives NAT and lossy Wi-Fi where UDP RTP loses packets and smears frames.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray
    number: int
    monotonic: float
    wall: datetime


@dataclass(frozen=True, slots=True)
class HealthChange:
    camera: str
    state: str  # online | offline
    since: datetime
    cause: str | None


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class CameraReader:
    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        stall_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        on_health: Callable[[HealthChange], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.backoff = backoff or Backoff(initial_s=0.5, cap_s=30.0)
        self._on_health = on_health
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)
        self.state = "offline"
        self.frames_in = 0
        self.reconnects = 0
        self.last_frame_monotonic: float | None = None
        self._number = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)

    def next_frame(self, after: int, timeout: float) -> Frame | None:
        """The newest frame numbered above ``after``; older frames were dropped on purpose."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set():
                if self._latest is not None and self._latest.number > after:
                    return self._latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        return None

    def _set_state(self, state: str, cause: str | None) -> None:
        if state == self.state:
            return
        self.state = state
        change = HealthChange(self.camera_id, state, datetime.now(timezone.utc), cause)
        if state == "online":
            log.info("camera %s online (%s)", self.camera_id, redact(self.url))
        else:
            log.warning("camera %s offline: %s", self.camera_id, cause)
        if self._on_health is not None:
            self._on_health(change)

    def _open(self):
        import cv2

        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000),
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _run(self) -> None:
        while not self._stop.is_set():
            cap = self._open()
            if cap is None:
                self._set_state("offline", f"could not open stream {redact(self.url)} (refused, timeout or not found)")
                self._sleep_backoff()
                continue
            cause = self._read_until_failure(cap)
            cap.release()
            if self._stop.is_set():
                break
            self.reconnects += 1
            self._set_state("offline", cause)
            self._sleep_backoff()

    def _read_until_failure(self, cap) -> str:
        opened_at = time.monotonic()
        last_frame_at = opened_at
        while not self._stop.is_set():
            ok, image = cap.read()
            now = time.monotonic()
            if not ok or image is None:
                # read() can fail transiently; the watchdog, not one failed read, declares the camera dead.
                if now - last_frame_at > self.stall_timeout_s:
                    return f"no frame for {now - last_frame_at:.1f} s (stalled)"
                if now - last_frame_at > self.read_timeout_s or not cap.isOpened():
                    return "stream ended or read timed out"
                time.sleep(0.05)
                continue
            last_frame_at = now
            self._number += 1
            self.frames_in += 1
            self.last_frame_monotonic = now
            frame = Frame(image, self._number, now, datetime.now(timezone.utc))
            with self._cond:
                self._latest = frame
                self._cond.notify_all()
            if self.state != "online":
                self._set_state("online", None)
                self.backoff.reset()
        return "stopped"

    def _sleep_backoff(self) -> None:
        delay = self.backoff.next_delay()
        self._stop.wait(delay)
