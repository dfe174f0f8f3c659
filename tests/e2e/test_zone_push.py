"""An operator redraws a zone over the camera's snapshot and pushes it; the edge applies it and the console
shows the version; the camera's re-check of the redrawn zone then finds it clear and closes the incident.
The street clip's cars never leave the kerb, so the fix the camera can verify is the zone itself: it had
been drawn over the legal parking bays, and the operator moves it onto the driving lane.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.site import DRIVING_LANE, KERB_ZONE, STREET, WORKFLOW

pytestmark = pytest.mark.timeout(240)
# A site of its own (the loop in test_workflow.py closes the shared one's incident first).
SITE_WORKFLOW = {**WORKFLOW, "scheduler_interval_s": 3}


def _act(site, user: str, incident_id: int, action: str, body: dict) -> dict:
    res = httpx.post(
        f"{site.base_url}/api/v1/incidents/{incident_id}/actions/{action}",
        json=body,
        headers={"Authorization": f"Bearer {site.token(user)}"},
        timeout=15,
    )
    assert res.status_code == 200, res.text
    return res.json()


def test_operator_redraws_the_zone_the_edge_applies_it_and_the_camera_check_closes(site, console_factory):
    incident = site.wait_for_incident("fire_lane_blocked")
    _act(site, "monitor", incident["id"], "confirm", {})
    _act(site, "monitor", incident["id"], "dispatch", {"worker": "wang-fang"})
    _act(site, "wang-fang", incident["id"], "accept", {})

    console = console_factory()
    console.login("admin")
    page = console.page
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-snapshot")).to_have_js_property("complete", True)
    page.locator("#delete-zone").click()
    page.locator("#new-zone").click()
    canvas = page.locator("#zone-canvas")
    box = canvas.bounding_box()
    for x, y in DRIVING_LANE + [DRIVING_LANE[0]]:
        canvas.click(position={"x": x * box["width"], "y": y * box["height"]})
    page.locator("#zone-id").fill(KERB_ZONE)
    page.locator("#zone-dwell_s").fill("4")
    page.locator("#push-zones").click()
    applied = page.locator("#applied-version")
    expect(applied).to_be_visible(timeout=30_000)
    assert applied.get_attribute("data-version")
    console.screenshot("zone-pushed")
    camera = next(c for s in site.get("/api/v1/sites").json() for e in s["edges"] for c in e["cameras"] if c["id"] == STREET)
    zone = next(z for z in camera["zones"] if z["id"] == KERB_ZONE)
    assert abs(zone["polygon"][0][1] - DRIVING_LANE[0][1]) < 0.01

    _act(site, "wang-fang", incident["id"], "feedback", {"note": "车位为合法停车位，消防通道已重新划定，通道畅通"})
    monitor = console_factory()
    monitor.login("monitor")
    page = monitor.page
    page.goto(f"{site.base_url}/#/incident/{incident['id']}")
    page.locator("button[data-action=check]").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("select[name=mode]").select_option("auto")
    dialog.locator("button[type=submit]").click()
    expect(page.locator("#incident-state")).to_have_attribute("data-state", "closed", timeout=60_000)
    expect(page.locator(".check-item[data-present=false]")).to_contain_text("隐患已消除")
    assert not console.errors and not monitor.errors, console.errors + monitor.errors
