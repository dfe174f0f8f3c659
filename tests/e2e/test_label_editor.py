"""A monitor corrects the boxes of an incident's raw frame in the console's label editor: adds a missed
object by dragging, relabels it, deletes a wrong box and saves; central keeps the label (who, when) and
the audit trail; the operations page lists each camera's detector with its history. Real Chromium,
real central and edge processes on the street footage (tests/e2e/site.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)


def test_monitor_edits_the_boxes_and_central_keeps_the_label(site, console_factory):
    incident = site.wait_for_incident("fire_lane_blocked")
    detected = site.get(f"/api/v1/incidents/{incident['id']}/labels", "monitor").json()
    assert detected["verdict"] is None and detected["boxes"]  # before review: the detections

    console = console_factory()
    console.login("monitor")
    page = console.page
    page.goto(f"{site.base_url}/#/incident/{incident['id']}")
    expect(page.locator("#label-frame")).to_have_js_property("complete", True)
    rows = page.locator("#label-list li")
    expect(rows).to_have_count(len(detected["boxes"]))
    canvas = page.locator("#label-canvas")
    box = canvas.bounding_box()
    # A missed object in the top-left corner, dragged out on the frame.
    page.mouse.move(box["x"] + 0.02 * box["width"], box["y"] + 0.05 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.12 * box["width"], box["y"] + 0.20 * box["height"], steps=5)
    page.mouse.up()
    expect(rows).to_have_count(len(detected["boxes"]) + 1)
    rows.last.locator("select").select_option("person")
    rows.first.locator("button.danger").click()  # the first detection was wrong
    page.locator("#save-labels").click()
    expect(page.locator("#label-verdict")).to_contain_text("monitor")
    console.screenshot("label-editor")

    saved = site.get(f"/api/v1/incidents/{incident['id']}/labels", "monitor").json()
    assert saved["verdict"] == "edited" and saved["reviewer"] == "monitor"
    assert len(saved["boxes"]) == len(detected["boxes"])  # one added, one deleted
    added = saved["boxes"][-1]
    assert added["label"] == "person"
    assert abs(added["box"][0] - 0.02) < 0.02 and abs(added["box"][3] - 0.20) < 0.03
    history = site.get(f"/api/v1/incidents/{incident['id']}/history", "admin").json()
    assert [h["actor"] for h in history if h["action"] == "label"] == ["monitor"]
    assert not console.errors, console.errors

    admin = console_factory()
    admin.login("admin")
    admin.page.goto(f"{site.base_url}/#/ops")
    row = admin.page.locator("#camera-models tr[data-camera='street']")
    expect(row).to_have_attribute("data-model", "yolov8n")
    expect(admin.page.locator("#registered-models tr[data-model='yolov8n']")).to_be_visible()
    assert not admin.errors, admin.errors
