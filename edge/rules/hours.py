"""Active hours: whether a local time of day falls in any of a zone's "HH:MM-HH:MM" windows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

Window = tuple[dt.time, dt.time]


def in_window(now: dt.time, window: Window) -> bool:
    """Start inclusive, end exclusive; a window whose end is before its start crosses midnight."""
    start, end = window
    now = now.replace(tzinfo=None)
    if start < end:
        return start <= now < end
    return now >= start or now < end


def in_any_window(now: dt.time, windows: Sequence[Window]) -> bool:
    """No windows means always active."""
    return not windows or any(in_window(now, w) for w in windows)
