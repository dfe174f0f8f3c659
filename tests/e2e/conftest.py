"""Fixtures for the browser tests: one running site per module, Chromium, logged-in pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, SCREENSHOTS
from tests.e2e.site import PASSWORDS, RunningSite, start_site


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/ensure-system.sh (installs Debian's chromium)", pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def _sites(mosquitto, rtsp_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningSite]]:
    """The running site by workflow configuration. Consecutive modules asking for the same one share it (start-up
    is slow); only one runs at a time, since each edge runs the detector on this machine's few cores."""
    running: dict[str, RunningSite] = {}
    yield running
    for one in running.values():
        one.stop()


@pytest.fixture
def site(request, _sites, mosquitto, rtsp_server, tmp_path_factory: pytest.TempPathFactory) -> RunningSite:
    """Central and an edge; a module's SITE_WORKFLOW (dict) becomes central's workflow.yaml."""
    workflow = getattr(request.module, "SITE_WORKFLOW", None)
    key = json.dumps(workflow, sort_keys=True)
    if key not in _sites:
        for other in _sites.values():
            other.stop()
        _sites.clear()
        _sites[key] = start_site(
            tmp_path_factory.mktemp("site"), mosquitto.port, rtsp_server.url("street_parked_cars_720p.mp4"), workflow=workflow
        )
    return _sites[key]


class Console:
    """Opens pages of the console as one user and records what the browser complained about."""

    def __init__(self, chromium, site: RunningSite, *, phone: bool = False, lang: str = "zh") -> None:
        self.site = site
        viewport = PHONE if phone else DESKTOP
        self.context = chromium.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, device_scale_factor=1, locale="zh-CN")
        if lang != "zh":  # Chinese is the console's default; a user's later switch must survive reloads
            self.context.add_init_script(f"localStorage.getItem('sharpeyes.lang') || localStorage.setItem('sharpeyes.lang', '{lang}')")
        self.page = self.context.new_page()
        # Script errors; failed HTTP requests are kept apart in `failed_requests` (url, status).
        self.errors: list[str] = []
        self.failed_requests: list[tuple[str, int]] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource") and self.errors.append(msg.text),
        )
        self.page.on("response", lambda res: res.status >= 400 and self.failed_requests.append((res.url, res.status)))

    def login(self, username: str) -> None:
        page = self.page
        page.goto(self.site.base_url + "/")
        page.locator("#login-username").fill(username)
        page.locator("#login-password").fill(PASSWORDS[username])
        page.locator("#login button[type=submit]").click()
        page.locator("#logout").wait_for(state="visible")

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console_factory(chromium, site) -> Iterator:
    opened: list[Console] = []

    def make(**kwargs) -> Console:
        console = Console(chromium, site, **kwargs)
        opened.append(console)
        return console

    yield make
    for console in opened:
        console.close()


@pytest.fixture
def frame_photo(tmp_path: Path, shared_media: Path) -> Path:
    """A real photo for the worker's report, as a phone saves it (JPEG): a frame of the street footage."""
    import cv2

    capture = cv2.VideoCapture(str(shared_media / "street_parked_cars_720p.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 200)
    ok, frame = capture.read()
    capture.release()
    assert ok, "could not read a frame of street_parked_cars_720p.mp4"
    target = tmp_path / "IMG_20261123_0412.jpg"
    cv2.imwrite(str(target), frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return target
