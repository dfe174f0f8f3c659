"""Operators in a real browser: sites, edges, cameras, grid and users; the zone editor over the camera's
latest snapshot, driven with the mouse and with the keyboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.site import DRIVING_LANE, KERB_ZONE, STREET

pytestmark = pytest.mark.timeout(200)


def _vertices(page) -> list[list[float]]:
    return [[float(v) for v in p.split(",")] for p in page.locator("#zone-polygon").input_value().split(";")]


def test_operations_page_lists_devices_grid_and_users(site, console_factory):
    site.wait_for_incident("fire_lane_blocked")  # the camera has a snapshot to draw on
    console = console_factory()
    console.login("admin")
    page = console.page
    page.locator("nav a", has_text="运维").click()
    expect(page.locator(f"#sites tr[data-camera={STREET}]")).to_contain_text(KERB_ZONE)
    expect(page.locator("#grid")).to_contain_text("第一网格")
    expect(page.locator("#users")).to_contain_text("wang-fang")
    console.screenshot("operations")
    # A monitor is not an operator: no such page in the navigation, and its address is refused.
    monitor = console_factory()
    monitor.login("monitor")
    expect(monitor.page.locator("nav a", has_text="运维")).to_have_count(0)
    monitor.page.goto(site.base_url + f"/#/zones/{STREET}")
    expect(monitor.page.locator("#view [role=alert]")).to_have_text("无权访问此页面")
    assert not console.errors, console.errors


def test_zone_is_drawn_with_the_mouse_and_nudged_with_the_keyboard(site, console_factory):
    console = console_factory()
    console.login("admin")
    page = console.page
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-snapshot")).to_have_js_property("complete", True)
    assert page.locator("#zone-snapshot").evaluate("img => img.naturalWidth") == 1280
    expect(page.locator("#zone-canvas polygon.zone")).to_have_count(1)

    page.locator("#new-zone").click()
    canvas = page.locator("#zone-canvas")
    box = canvas.bounding_box()
    for x, y in DRIVING_LANE + [DRIVING_LANE[0]]:  # clicking the first vertex again closes the polygon
        canvas.click(position={"x": x * box["width"], "y": y * box["height"]})
    expect(page.locator("#zone-canvas polygon.zone")).to_have_count(2)
    drawn = _vertices(page)
    assert len(drawn) == 4
    for (x, y), (ex, ey) in zip(drawn, DRIVING_LANE):
        assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01
    expect(page.locator("#dirty")).to_have_text("未下发的修改")

    # Keyboard: N selects the next vertex, arrows move it, Delete removes it.
    canvas.focus()
    page.keyboard.press("n")
    page.keyboard.press("ArrowUp")
    moved = _vertices(page)
    assert moved[0][1] == pytest.approx(drawn[0][1] - 0.005, abs=1e-3)
    page.keyboard.press("Delete")
    assert len(_vertices(page)) == 3

    # Typing vertices is the precise way; the picture follows.
    page.locator("#zone-polygon").fill("0.25,0.62; 0.8,0.6; 0.8,0.7; 0.25,0.72")
    page.locator("#zone-id").fill("driving-lane")
    expect(page.locator("#zone-list")).to_contain_text("driving-lane")
    assert len(_vertices(page)) == 4
    console.screenshot("zone-editor")

    # A polygon whose edges cross is refused before anything is sent to the edge.
    page.locator("#zone-polygon").fill("0.1,0.1; 0.9,0.9; 0.9,0.1; 0.1,0.9")
    page.locator("#push-zones").click()
    expect(page.locator("#push-status [role=alert]")).to_contain_text("edges cross each other")
    assert not console.errors, console.errors
