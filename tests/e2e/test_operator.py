"""Operators in a real browser: sites, edges, cameras, grid and users; the zone editor over the camera's
latest snapshot, driven with the mouse and with the keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import audit
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
    site.wait_for_incident("fire_lane_blocked")
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
    for (x, y), (ex, ey) in zip(drawn, DRIVING_LANE, strict=True):
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


def test_pages_have_labels_names_and_contrast_in_both_languages(site, console_factory):
    site.wait_for_incident("fire_lane_blocked")
    console = console_factory()
    console.login("admin")
    page = console.page
    found = {}
    for lang in ("zh", "en"):
        for name in ("monitor", "board", "dashboard", "silences", "cameras", "ops", f"zones/{STREET}"):
            page.goto(f"{site.base_url}/#/{name}")
            expect(page.locator("#view h2")).to_be_visible()
            page.wait_for_load_state("networkidle")
            found[f"{lang} {name}"] = audit(page)
        if lang == "zh":
            page.locator("#lang").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
    assert found == {key: [] for key in found}


def test_login_is_usable_with_the_keyboard_alone(site, console_factory):
    console = console_factory()
    page = console.page
    page.goto(site.base_url + "/")
    expect(page.locator("#login-username")).to_be_focused()
    page.keyboard.type("monitor")
    page.keyboard.press("Tab")
    expect(page.locator("#login-password")).to_be_focused()
    page.keyboard.type("pw-monitor-e2e")
    page.keyboard.press("Tab")
    expect(page.locator("#login button[type=submit]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#logout")).to_be_visible()
    # After a page change the keyboard starts in the content: the next Tab reaches the queue's filter.
    expect(page.locator("#view")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("button[data-filter=open]")).to_be_focused()
    # On a fresh load the first Tab lands on the skip link, which jumps past the navigation.
    page.reload()
    expect(page.locator("h2")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#view")).to_be_focused()
    expect(page).to_have_url(re.compile("#/monitor$"))
    assert audit(page) == []


def test_the_audit_itself_catches_missing_names_and_faint_text(chromium):
    page = chromium.new_page()
    page.set_content(
        '<p style="color:#aaa">faint text</p><input id="x"><img src="x.png"><button></button>'
        '<p style="color:#fff;background:#17324d">fine</p>'
    )
    assert audit(page) == ["no label: input#x", "no name: button", "no alt: img", 'contrast 2.32 for "faint text" in p']
    page.close()
