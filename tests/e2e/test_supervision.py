"""Deadlines on the supervision board: with a dispatch deadline of seconds, an incident nobody dispatches
turns yellow, then red and supervised (督办), live on the board and in the monitor's queue."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(200)
SITE_WORKFLOW = {
    "hazards": {"fire_lane_blocked": {"auto_register_score": 0.0, "deadlines": {"dispatch": 8}}},
    "auto_dispatch": False,
    "scheduler_interval_s": 1,
}


def test_overdue_work_turns_red_on_the_board_without_a_reload(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    page.locator("nav a", has_text="督办看板").click()
    expect(page.locator("#board-grid")).to_contain_text("第一网格")
    incident = site.wait_for_incident("fire_lane_blocked")
    overdue = page.locator("#board-overdue")
    expect(overdue.locator(f"a[href='#/incident/{incident['id']}']")).to_be_visible(timeout=30_000)
    expect(overdue.locator(".badge.deadline-red").first).to_have_text(re.compile("^超期"))
    # Counted at the grid cell and at every level above it.
    expect(page.locator("#board-grid tr.row-red")).to_have_count(3)
    console.screenshot("supervision-board")

    page.locator("nav a", has_text="告警队列").click()
    item = page.locator(f"#q-{incident['id']}")
    expect(item).to_have_class(re.compile("edge-red"))
    expect(item.locator(".badge.deadline-red").first).to_be_visible()
    assert not console.errors, console.errors
    assert not console.failed_requests, console.failed_requests
