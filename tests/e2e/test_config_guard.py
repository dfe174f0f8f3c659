"""Removing a zone from the console is confirmed against central's own account of what it takes away, and
undone from the operations page: the operator deletes the kerb zone (an open incident in it, under legal
hold), sees central's 409 (the removal, the incident with a link, the held evidence, the PIPL entry),
cancels (nothing saved), pushes again and confirms; the edge applies it and the history shows the new
version. Restoring the version before it, confirmed the same way, brings the zone back."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.a11y import audit
from tests.e2e.site import DRIVING_LANE, EDGE, KERB, KERB_ZONE, STREET, WORKFLOW

pytestmark = pytest.mark.timeout(300)
# A site of its own: this module changes the street camera's zones, which the other modules rely on.
SITE_WORKFLOW = {**WORKFLOW, "scheduler_interval_s": 4}
LANE_ZONE = "driving-lane"


def _zones(site) -> dict[str, list]:
    camera = next(c for s in site.get("/api/v1/sites").json() for e in s["edges"] for c in e["cameras"] if c["id"] == STREET)
    return {z["id"]: z["polygon"] for z in camera["zones"]}


def _history(site) -> dict:
    res = site.get(f"/api/v1/edges/{EDGE}/config/versions")
    assert res.status_code == 200, res.text
    return res.json()


def _wait_applied(site, command_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = site.get(f"/api/v1/commands/{command_id}").json()
        if reply["status"] != "pending":
            assert reply["status"] == "ok", reply
            return
        time.sleep(0.5)
    raise AssertionError(f"the edge did not apply command {command_id} within {timeout:.0f} s\n{site.logs()}")


def test_zone_removal_is_confirmed_with_what_it_touches_and_restored_from_the_history(site, console_factory):
    incident = site.wait_for_incident("fire_lane_blocked")
    assert incident["zone"] == KERB_ZONE
    held = httpx.put(
        f"{site.base_url}/api/v1/incidents/{incident['id']}/legal-hold",
        json={"hold": True, "reason": "court order 2026-17"},
        headers={"Authorization": f"Bearer {site.token('admin')}"},
        timeout=10,
    )
    assert held.status_code == 200, held.text
    # The site file's configuration, taken as the first version on central's first start (the database wins after).
    assert [(v["version"], v["action"], v["actor"]) for v in _history(site)["versions"]] == [(1, "import", "site file")]

    console = console_factory()
    console.login("admin")
    page = console.page
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-snapshot")).to_have_js_property("complete", True)
    page.locator("#delete-zone").click()  # the kerb zone, the camera's only one
    expect(page.locator("#pending-removals")).to_contain_text(f"{STREET}/{KERB_ZONE}")
    page.locator("#new-zone").click()
    canvas = page.locator("#zone-canvas")
    box = canvas.bounding_box()
    for x, y in DRIVING_LANE + [DRIVING_LANE[0]]:
        canvas.click(position={"x": x * box["width"], "y": y * box["height"]})
    page.locator("#zone-id").fill(LANE_ZONE)

    # The first push is refused: the dialog shows central's list and what the removal touches.
    page.locator("#push-zones").click()
    dialog = page.locator("#config-change-dialog[open]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#removal-list li")).to_have_count(1)
    expect(dialog.locator(f'#removal-list li[data-removal="{STREET}/{KERB_ZONE}"]')).to_be_visible()
    link = dialog.locator(f"#affected-incidents a[data-incident='{incident['id']}']")
    expect(link).to_have_attribute("href", f"#/incident/{incident['id']}")
    expect(dialog.locator("#affected-evidence")).to_contain_text("法律保全")
    expect(dialog.locator("#affected-pipl")).to_contain_text(STREET)
    expect(dialog.locator("#ccd-confirm")).to_have_text(f"删除 {KERB_ZONE} 并保存")
    expect(dialog.locator("#ccd-cancel")).to_be_focused()  # the safe choice is the default one
    assert audit(page) == []
    console.screenshot("zone-removal-confirm")

    # Cancel: nothing is saved, the edit stays in the editor.
    dialog.locator("#ccd-cancel").click()
    expect(page.locator("#config-change-dialog")).to_have_count(0)
    expect(page.locator("#push-cancelled")).to_be_visible()
    expect(page.locator("#dirty")).to_have_text("未下发的修改")
    assert set(_zones(site)) == {KERB_ZONE} and len(_history(site)["versions"]) == 1

    # Again, and confirmed: sent with exactly central's list; the edge applies it.
    page.locator("#push-zones").click()
    expect(dialog).to_be_visible()
    dialog.locator("#ccd-reason").fill("lane redrawn over the driving lane")
    dialog.locator("#ccd-confirm").click()
    expect(page.locator("#applied-version")).to_be_visible(timeout=30_000)
    expect(page.locator("#config-change-dialog")).to_have_count(0)
    expect(page.locator("#pending-removals")).to_be_hidden()
    assert set(_zones(site)) == {LANE_ZONE}
    history = _history(site)
    assert history["chain_ok"]
    assert [(v["version"], v["action"]) for v in history["versions"]] == [(1, "import"), (2, "zones")]
    pushed = history["versions"][1]
    assert pushed["summary"]["zones_removed"] == [f"{STREET}/{KERB_ZONE}"]
    assert pushed["summary"]["zones_added"] == [f"{STREET}/{LANE_ZONE}"]
    assert pushed["reason"] == "lane redrawn over the driving lane" and pushed["actor"] == "admin"

    # The operations page shows the history; restoring version 1 removes the new lane, so it is confirmed too.
    page.goto(f"{site.base_url}/#/ops")
    edge_history = page.locator(f"#config-history .config-history[data-edge='{EDGE}']")
    expect(edge_history.locator("[data-chain=ok]")).to_be_visible()
    newest = edge_history.locator("tr[data-version='2']")
    expect(newest).to_contain_text(f"{STREET}/{KERB_ZONE}")
    expect(newest).to_contain_text("lane redrawn over the driving lane")
    expect(newest.locator("button[data-restore]")).to_have_count(0)
    expect(edge_history.locator("tr[data-version='1'][data-action=import]")).to_contain_text("site file")
    assert audit(page) == []
    console.screenshot("config-history")

    edge_history.locator("tr[data-version='1'] button[data-restore]").click()
    expect(dialog.locator("#ccd-title")).to_contain_text("版本 1")
    dialog.locator("#ccd-reason").fill("undo: the kerb zone was right")
    dialog.locator("#ccd-confirm").click()
    expect(dialog.locator(f'#removal-list li[data-removal="{STREET}/{LANE_ZONE}"]')).to_be_visible()
    expect(dialog.locator("#affected-incidents")).to_have_count(0)  # no incident in the new lane
    expect(dialog.locator("#ccd-reason")).to_have_value("undo: the kerb zone was right")
    expect(dialog.locator("#ccd-confirm")).to_have_text(f"删除 {STREET}/{LANE_ZONE} 并恢复")
    dialog.locator("#ccd-confirm").click()
    expect(page.locator("#config-change-dialog")).to_have_count(0)
    restored = edge_history.locator("tr[data-version='3'][data-action=restore]")
    expect(restored).to_contain_text("恢复自版本 1")
    expect(page.locator(f"#sites tr[data-camera={STREET}]")).to_contain_text(KERB_ZONE)

    zones = _zones(site)
    assert set(zones) == {KERB_ZONE} and zones[KERB_ZONE] == KERB
    last = _history(site)["versions"][-1]
    assert (last["version"], last["action"], last["restored_from"]) == (3, "restore", 1)
    assert last["summary"]["zones_added"] == [f"{STREET}/{KERB_ZONE}"] and last["reason"] == "undo: the kerb zone was right"
    _wait_applied(site, last["command_id"])
    assert not console.errors, console.errors


def test_the_removals_confirmed_are_centrals_even_those_made_elsewhere(site, console_factory):
    """Someone else adds a zone while the editor is open; the editor's push would drop it. The editor deleted
    nothing itself, but central's 409 is the truth: the dialog names that zone and says it was not removed here."""
    site.wait_for_incident("fire_lane_blocked")
    console = console_factory()
    console.login("admin")
    page = console.page
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-snapshot")).to_have_js_property("complete", True)
    before = len(_history(site)["versions"])

    elsewhere = [
        {"id": KERB_ZONE, "kind": "fire_lane", "polygon": KERB, "dwell_s": 4, "clear_s": 8, "realarm_s": 600},
        {"id": LANE_ZONE, "kind": "fire_lane", "polygon": DRIVING_LANE, "dwell_s": 4},
    ]
    added = httpx.put(
        f"{site.base_url}/api/v1/cameras/{STREET}/zones",
        json={"zones": elsewhere, "reason": "another operator"},
        headers={"Authorization": f"Bearer {site.token('admin')}"},
        timeout=10,
    )
    assert added.status_code == 202, added.text

    page.locator("#zone-dwell_s").fill("5")  # an edit that removes nothing on this page
    expect(page.locator("#pending-removals")).to_be_hidden()
    page.locator("#push-zones").click()
    dialog = page.locator("#config-change-dialog[open]")
    item = dialog.locator(f'#removal-list li[data-removal="{STREET}/{LANE_ZONE}"]')
    expect(item).to_contain_text("并非在此页面删除")
    expect(dialog.locator("#removal-list li")).to_have_count(1)
    expect(dialog.locator("#ccd-confirm")).to_have_text(f"删除 {LANE_ZONE} 并保存")
    page.keyboard.press("Escape")  # cancels, like the button
    expect(page.locator("#config-change-dialog")).to_have_count(0)
    expect(page.locator("#push-cancelled")).to_be_visible()
    assert set(_zones(site)) == {KERB_ZONE, LANE_ZONE}
    assert len(_history(site)["versions"]) == before + 1  # the other operator's change only
    assert not console.errors, console.errors
