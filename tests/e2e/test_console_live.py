"""The console in a real browser against a real central fed by a real edge watching RTSP footage."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import SLOW_NETWORK
from tests.e2e.site import STREET

pytestmark = pytest.mark.timeout(200)


def test_alert_arrives_live_and_opens_with_the_keyboard(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    # Logged in before any incident exists: the alert must arrive over server-sent events, without reload.
    expect(page.locator("#live")).to_have_text(re.compile("实时"))
    incident = site.wait_for_incident("fire_lane_blocked")
    item = page.locator(f"#q-{incident['id']}")
    expect(item).to_be_visible(timeout=15_000)
    expect(item).to_contain_text("消防通道占用")
    expect(item).to_contain_text(STREET)
    expect(item.locator("img")).to_have_js_property("complete", True)
    assert item.locator("img").evaluate("img => img.naturalWidth") > 0
    # The preview draws what the detector saw over the frame.
    expect(page.locator("#preview rect.box").first).to_be_attached()

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/incident/{incident['id']}$"))
    expect(page.locator("h2")).to_have_text(f"消防通道占用 #{incident['id']}")
    expect(page.locator(".gallery img").first).to_have_js_property("complete", True)
    # The edge's clip of the moment plays in the browser (H.264 in MP4, decoded by Chromium).
    site.wait_for_evidence(incident["id"], "video/mp4")
    page.reload()
    # Clips cannot be redacted, so the desk plays the original after saying why; the reason is recorded.
    request = page.locator(".gallery .original-request[data-video=true]")
    request.locator("input").fill("check who parked the car")
    request.locator("button").click()
    clip = page.locator(".gallery video")
    expect(clip).to_have_count(1)
    page.wait_for_function("() => document.querySelector('.gallery video').readyState >= 1", timeout=20_000)
    assert clip.evaluate("v => v.duration") > 1
    page.reload()
    looked = page.locator("#who-looked tr[data-variant='original']")
    expect(looked.first).to_contain_text("check who parked the car")
    expect(page.locator("#who-looked tr[data-variant='redacted']").first).to_be_visible()  # the snapshot, blurred
    assert not console.errors, console.errors


def test_language_switches_to_english_and_back(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    expect(page.locator("nav")).to_contain_text("告警队列")
    page.locator("#lang").click()
    expect(page.locator("nav")).to_contain_text("Alert queue")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#live")).to_have_text("● live")
    page.reload()
    expect(page.locator("nav")).to_contain_text("Alert queue")
    page.locator("#lang").click()
    expect(page.locator("nav")).to_contain_text("告警队列")


def test_wrong_password_is_refused_with_a_message(site, console_factory):
    console = console_factory()
    page = console.page
    page.goto(site.base_url + "/")
    page.locator("#login-username").fill("monitor")
    page.locator("#login-password").fill("not-the-password")
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
    expect(page.locator("#logout")).to_be_hidden()


def test_worker_on_a_slow_phone_sees_only_their_task_pages(site, console_factory):
    site.wait_for_incident("fire_lane_blocked")
    console = console_factory(phone=True)
    cdp = console.context.new_cdp_session(console.page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_NETWORK)
    console.login("wang-fang")
    page = console.page
    expect(page).to_have_url(re.compile("#/tasks$"))
    # A worker's navigation has no monitor pages, and typing their address is refused.
    expect(page.locator("nav a")).to_have_count(1)
    expect(page.locator("#tasklist .task").first).to_contain_text("消防通道占用")
    # Nothing is wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.goto(site.base_url + "/#/dashboard")
    expect(page.locator("#view [role=alert]")).to_have_text("无权访问此页面")
    assert not console.errors, console.errors


def test_zone_editor_geometry_refuses_crossing_and_tiny_polygons(site, console_factory):
    page = console_factory().page
    page.goto(site.base_url + "/")
    result = page.evaluate(
        """async () => {
            const g = await import('/static/js/polygon.js');
            return {
                square: g.problems([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]),
                bowtie: g.problems([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]),
                line: g.problems([[0.1, 0.1], [0.9, 0.9]]),
                parsed: g.fromText('0.25,0.62; 0.8,0.6; 0.8,0.7'),
                bad: (() => { try { g.fromText('0.2,0.3; 1.4,0.2'); return null; } catch (e) { return e.message; } })(),
            };
        }"""
    )
    assert result["square"] == []
    assert result["bowtie"] == ["edges cross each other"]
    assert result["line"] == ["needs at least 3 vertices"]
    assert result["parsed"] == [[0.25, 0.62], [0.8, 0.6], [0.8, 0.7]]
    assert result["bad"] == 'vertex 2 "1.4,0.2": expected x,y between 0 and 1'


def test_dashboard_charts_draw_the_counts_central_aggregated(site, console_factory):
    """The trend chart is /stats' by_day as it is (central counts every incident, see
    tests/central/test_stats_sql.py with 5,000): days without incidents are 0, none is recounted here."""
    page = console_factory().page
    page.goto(site.base_url + "/")
    series = page.evaluate(
        """async () => {
            const d = await import('/static/js/views/dashboard.js');
            const now = new Date('2026-12-05T08:00:00Z');
            return d.perDay([{day: '2026-12-05', incidents: 3120}, {day: '2026-12-03', incidents: 1880},
                             {day: '2026-10-01', incidents: 7}], 5, now);
        }"""
    )
    assert series == [{"label": "12-01", "value": 0}, {"label": "12-02", "value": 0}, {"label": "12-03", "value": 1880},
                      {"label": "12-04", "value": 0}, {"label": "12-05", "value": 3120}]
