"""The silences screen: a monitor silences a camera's zone for roadworks from the console, sees who
set it and until when, and ends it; a grid worker's console has no such page."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.site import STREET


def test_monitor_adds_and_ends_a_silence_in_the_console(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    page.locator("nav a", has_text="静默").click()
    expect(page.locator("#view h2")).to_have_text("告警静默")
    page.locator("#sil-camera").select_option(STREET)
    zones = page.locator("#sil-zone option")
    expect(zones.first).to_have_text("全部区域")
    page.locator("#sil-hours").fill("2")
    page.locator("#sil-reason").fill("道路施工 roadworks in the lane")
    page.locator("#add-silence button[type=submit]").click()
    row = page.locator(f"#silences tr[data-camera={STREET}]")
    expect(row).to_contain_text("道路施工 roadworks in the lane")
    expect(row).to_contain_text("monitor")
    api_rows = site.get("/api/v1/suppressions", "monitor").json()
    assert [(r["camera"], r["reason"], r["created_by"]) for r in api_rows] == [(STREET, "道路施工 roadworks in the lane", "monitor")]
    row.locator("button.danger").click()
    expect(page.locator("#no-silences")).to_be_visible()
    assert site.get("/api/v1/suppressions", "monitor").json() == []
    assert not console.errors, console.errors

    worker = console_factory(phone=True)
    worker.login("wang-fang")
    expect(worker.page.locator("nav a", has_text="静默")).to_have_count(0)
