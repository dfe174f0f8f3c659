"""Debian's Chromium driven through Playwright's Python API (Playwright never downloads a browser here)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1440, "height": 900}
# A small Android phone: the grid worker's view must work at 360 CSS pixels.
PHONE = {"width": 360, "height": 740}
# Chrome DevTools' "Slow 3G"-like profile for the worker's phone.
SLOW_NETWORK = {"offline": False, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 25_000}

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
