"""Running the deployment from the console (issue 26): the camera inventory searched and paged by central
on a site seeded with a catalogue through the inventory CLI; a camera added through the form (central's
refusals marked at the fields they name), moved and retired through the confirm dialog; every edge's drift
while the real edge is stopped and after it converges; and a zone redrawn in the console that survives a
restart of central, on the console and on the edge, and a later push for another camera of that edge."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import expect

from tests.e2e.a11y import audit
from tests.e2e.site import DRIVING_LANE, EDGE, KERB_ZONE, STREET, WORKFLOW

pytestmark = pytest.mark.timeout(300)
# A site of its own: this module adds edges and cameras, restarts central and stops the edge.
SITE_WORKFLOW = {**WORKFLOW, "scheduler_interval_s": 5}

CATALOGUE_EDGE = "edge-catalogue"
SEEDED = 240
GATE = "gate-new"
SPARE_EDGE = "edge-spare"


def _channel(i: int) -> str:
    return f"3402000000132{i:07d}"


def _seed_catalogue(site, tmp_path: Path) -> None:
    """A city platform's catalogue of SEEDED cameras on an edge that is not running, imported with the CLI
    into the running central's database (as an operator does: central follows the inventory)."""
    path = tmp_path / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "通道编号", "名称", "网格", "取流地址", "经度", "纬度", "边缘节点"])
        for i in range(SEEDED):
            name = "3号楼东门 East gate" if i == 123 else f"{i}号楼 block {i}"
            writer.writerow([f"cat-{i:04d}", _channel(i), name, "110101001001" if i % 2 else "110101001",
                             f"rtsp://10.20.{i // 250}.{i % 250 + 1}/ch1", f"{116.39 + i * 1e-4:.5f}", "39.91", CATALOGUE_EDGE])
    database = site.central_args[site.central_args.index("--database-url") + 1]
    done = subprocess.run([sys.executable, "-m", "sharpeyes", "central", "inventory", "import", str(path),
                           "--database-url", database, "--reason", "district catalogue"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # central's copy of the site follows the database
        if any(r["edge"] == CATALOGUE_EDGE for r in site.get("/api/v1/edge-drift").json()):
            return
        time.sleep(0.5)
    raise AssertionError(f"central did not take up {CATALOGUE_EDGE}\n{site.logs()}")


def _drift(site, edge: str = EDGE) -> dict:
    return next(r for r in site.get("/api/v1/edge-drift").json() if r["edge"] == edge)


def _wait(predicate, what: str, site, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{site.logs()}")


def _admin(site, method: str, path: str, body: dict) -> httpx.Response:
    return httpx.request(method, f"{site.base_url}{path}", json=body, timeout=15,
                         headers={"Authorization": f"Bearer {site.token('admin')}"})


def _street_zones(site) -> dict[str, list]:
    camera = next(c for s in site.get("/api/v1/sites").json() for e in s["edges"] for c in e["cameras"] if c["id"] == STREET)
    return {z["id"]: z["polygon"] for z in camera["zones"]}


def _close(polygon, expected, tolerance=0.01) -> bool:
    return len(polygon) == len(expected) and all(
        abs(x - ex) < tolerance and abs(y - ey) < tolerance for (x, y), (ex, ey) in zip(polygon, expected, strict=True))


def test_camera_list_is_searched_and_paged_and_a_camera_is_added_moved_and_retired(site, console_factory, tmp_path):
    _seed_catalogue(site, tmp_path)
    total = SEEDED + 1  # and the street camera of the site file
    console = console_factory()
    console.login("admin")
    page = console.page
    page.locator("nav a", has_text="摄像头").click()
    expect(page.locator("#view h2")).to_have_text("摄像头与边缘节点")
    count = page.locator("#camera-count")
    rows = page.locator("#camera-list tbody tr")
    expect(count).to_have_text(f"第 1–50 条，共 {total} 条")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-camera", "cat-0000")
    expect(page.locator("#page-prev")).to_be_disabled()
    # Each camera links to its zone editor.
    expect(rows.first.locator("a[href='#/zones/cat-0000']")).to_be_visible()

    page.locator("#page-next").click()
    expect(count).to_have_text(f"第 51–100 条，共 {total} 条")
    expect(rows.first).to_have_attribute("data-camera", "cat-0050")
    expect(page.locator("#page-prev")).to_be_enabled()

    # Typed searches go to central (debounced), by id, name and the start of the channel id; paging starts over.
    search = page.locator("#cam-q")
    search.fill("cat-012")
    expect(count).to_have_text("第 1–10 条，共 10 条")
    expect(rows.first).to_have_attribute("data-camera", "cat-0120")
    search.fill("东门")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-camera", "cat-0123")
    search.fill(_channel(7))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-camera", "cat-0007")
    search.fill("")
    page.locator("#cam-edge").select_option(CATALOGUE_EDGE)
    page.locator("#cam-grid").fill("110101001")
    expect(count).to_have_text(f"第 1–50 条，共 {SEEDED // 2} 条")
    expect(page.locator("#camera-list tbody tr[data-grid='110101001001']")).to_have_count(0)
    page.locator("#cam-grid").fill("")
    page.locator("#cam-edge").select_option("")
    expect(count).to_have_text(f"第 1–50 条，共 {total} 条")

    # The catalogue's edge never ran: it drifts, and says why.
    catalogue = page.locator(f"#edge-drift tr[data-edge='{CATALOGUE_EDGE}']")
    expect(catalogue).to_have_attribute("data-in-sync", "false")
    expect(catalogue).to_have_class("drifting")
    expect(catalogue.locator(".problems")).to_contain_text("no status from this edge yet")
    assert audit(page) == []
    console.screenshot("inventory")

    # A spare edge, added from the page.
    page.locator("#ne-id").fill(SPARE_EDGE)
    page.locator("#add-edge button[type=submit]").click()
    expect(page.locator(f"#edge-drift tr[data-edge='{SPARE_EDGE}']")).to_be_visible(timeout=15_000)

    # Add a camera: central's refusals are shown at the fields they name, nothing is stored.
    page.locator("#add-camera").click()
    form = page.locator("#camera-dialog[open] #camera-form")
    expect(form).to_be_visible()
    form.locator("#cf-edge").select_option(CATALOGUE_EDGE)
    form.locator("#cf-id").fill(GATE)
    form.locator("#cf-name").fill("新大门 New gate")
    form.locator("#cf-url").fill("rtsp://admin:hunter2@10.1.1.1/live")
    form.locator("#cf-channel_id").fill("12345")
    form.locator("#cf-grid_cell").fill("999")
    form.locator("#cf-lon").fill("116.391")
    form.locator("#cf-lat").fill("39.912")
    form.locator("#cf-submit").click()
    expect(form.locator("#cf-url-error")).to_contain_text("plain text")
    expect(form.locator("#cf-url")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#cf-channel_id-error")).to_contain_text("pattern")
    expect(form.locator("#cf-name-error")).to_be_hidden()
    assert audit(page) == []
    console.screenshot("inventory-camera-form")
    form.locator("#cf-url").fill("rtsp://admin:${GATE_PASSWORD}@10.1.1.1/live")
    form.locator("#cf-channel_id").fill(_channel(9999))
    form.locator("#cf-submit").click()
    expect(form.locator("#cf-grid_cell-error")).to_contain_text("not in the grid")
    expect(form.locator("#cf-url-error")).to_be_hidden()
    expect(form.locator("#cf-url")).to_have_attribute("aria-invalid", "false")
    assert site.get(f"/api/v1/cameras?q={GATE}").json()["total"] == 0

    form.locator("#cf-grid_cell").fill("110101001001")
    form.locator("#cf-reason").fill("new gate opened")
    form.locator("#cf-submit").click()
    expect(page.locator("#camera-dialog")).to_have_count(0)
    search.fill(GATE)
    gate = page.locator(f"#camera-list tbody tr[data-camera='{GATE}']")
    expect(gate).to_have_attribute("data-edge", CATALOGUE_EDGE)
    expect(gate).to_contain_text("新大门 New gate")
    expect(gate).to_contain_text("${GATE_PASSWORD}")
    listed = site.get(f"/api/v1/cameras?q={GATE}").json()["items"][0]
    assert (listed["lon"], listed["lat"], listed["channel_id"]) == (116.391, 39.912, _channel(9999))

    # Edit it: the form opens with its keys; the id and the edge are not changed here.
    gate.locator(f"button[data-edit='{GATE}']").click()
    expect(form.locator("#cf-id")).to_be_disabled()
    expect(form.locator("#cf-url")).to_have_value("rtsp://admin:${GATE_PASSWORD}@10.1.1.1/live")
    form.locator("#cf-name").fill("新大门（北）New gate, north")
    form.locator("#cf-submit").click()
    expect(page.locator("#camera-dialog")).to_have_count(0)
    expect(gate).to_contain_text("新大门（北）New gate, north")

    # Move it to the spare edge and another grid cell.
    gate.locator(f"button[data-move='{GATE}']").click()
    move = page.locator("#move-dialog[open]")
    move.locator("#mv-edge").select_option(SPARE_EDGE)
    move.locator("#mv-grid").fill("110101001")
    assert audit(page) == []
    move.locator("#mv-submit").click()
    expect(page.locator("#move-dialog")).to_have_count(0)
    expect(gate).to_have_attribute("data-edge", SPARE_EDGE)
    expect(gate).to_have_attribute("data-grid", "110101001")

    # Retire it: central's 409 is shown in the confirm dialog; confirming retires it, and it stays listed as retired.
    gate.locator(f"button[data-retire='{GATE}']").click()
    dialog = page.locator("#config-change-dialog[open]")
    expect(dialog.locator(f"#removal-list li[data-removal='{GATE}']")).to_be_visible()
    expect(dialog.locator("#ccd-confirm")).to_have_text(f"删除 {GATE} 并停用")
    expect(dialog.locator("#ccd-cancel")).to_be_focused()
    assert audit(page) == []
    dialog.locator("#ccd-reason").fill("gate closed")
    dialog.locator("#ccd-confirm").click()
    expect(page.locator("#config-change-dialog")).to_have_count(0)
    expect(count).to_have_text("没有符合条件的摄像头")
    page.locator("#cam-retired").check()
    expect(gate).to_be_visible()
    assert site.get(f"/api/v1/cameras?q={GATE}&retired=true").json()["items"][0]["retired_at"]

    # The spare edge, empty again, is retired after a confirmation.
    page.locator(f"#edge-drift button[data-retire-edge='{SPARE_EDGE}']").click()
    expect(dialog.locator("#ccd-title")).to_contain_text(SPARE_EDGE)
    dialog.locator("#ccd-confirm").click()
    expect(page.locator(f"#edge-drift tr[data-edge='{SPARE_EDGE}']")).to_have_count(0)
    assert not console.errors, console.errors


def test_the_drift_of_a_stopped_edge_is_shown_until_it_converges(site, console_factory):
    # The kerb zone's first incident, before this test moves the zone onto the driving lane (where
    # nothing parks): its snapshot is what the zone test below draws on.
    site.wait_for_incident("fire_lane_blocked")
    _wait(lambda: _drift(site)["in_sync"], f"{EDGE} in sync", site, timeout=120)
    site.stop_edge()
    zones = [{"id": KERB_ZONE, "kind": "fire_lane", "polygon": DRIVING_LANE, "dwell_s": 5, "clear_s": 8, "realarm_s": 600}]
    pushed = _admin(site, "PUT", f"/api/v1/cameras/{STREET}/zones", {"zones": zones, "reason": "edge is away"})
    assert pushed.status_code == 202, pushed.text
    desired = _drift(site)["desired_version"]
    assert desired is not None

    console = console_factory(lang="en")
    console.login("monitor")  # a desk role sees the drift; only admins change anything
    page = console.page
    page.goto(f"{site.base_url}/#/cameras")
    row = page.locator(f"#edge-drift tr[data-edge='{EDGE}']")
    expect(row).to_have_attribute("data-in-sync", "false")
    expect(row).to_have_class("drifting")
    expect(row.locator(".desired")).to_have_text(str(desired))
    expect(row.locator(".applied")).not_to_have_text(str(desired))
    expect(row.locator(".since")).not_to_have_text("—")
    expect(row.locator(".problems")).not_to_have_text("—")
    expect(page.locator("#drift-summary")).to_contain_text("drifting")
    expect(page.locator("#add-camera")).to_have_count(0)
    expect(page.locator("button[data-retire-edge]")).to_have_count(0)
    assert audit(page) == []
    console.screenshot("edge-drift")

    # The edge comes back with its old site file: the broker hands it the desired version, nobody pushes again.
    site.start_edge()
    expect(row).to_have_attribute("data-in-sync", "true", timeout=120_000)
    expect(row.locator(".applied")).to_have_text(str(desired))
    expect(row.locator(".problems")).to_have_text("—")
    assert _close(_street_zones(site)[KERB_ZONE], DRIVING_LANE)
    assert not console.errors, console.errors


def test_a_zone_redrawn_in_the_console_survives_a_restart_of_central_and_a_later_push(site, console_factory):
    site.wait_for_incident("fire_lane_blocked")  # a snapshot to draw on
    console = console_factory()
    console.login("admin")
    page = console.page
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-snapshot")).to_have_js_property("complete", True)
    page.locator("#delete-zone").click()
    page.locator("#new-zone").click()
    canvas = page.locator("#zone-canvas")
    box = canvas.bounding_box()
    redrawn = [[0.20, 0.60], [0.85, 0.58], [0.85, 0.71], [0.20, 0.73]]
    for x, y in redrawn + [redrawn[0]]:
        canvas.click(position={"x": x * box["width"], "y": y * box["height"]})
    page.locator("#zone-id").fill(KERB_ZONE)
    page.locator("#zone-dwell_s").fill("4")
    page.locator("#push-zones").click()
    applied = page.locator("#applied-version")
    expect(applied).to_be_visible(timeout=30_000)
    version = _drift(site)["desired_version"]
    assert _close(_street_zones(site)[KERB_ZONE], redrawn)
    _wait(lambda: _drift(site)["applied_version"] == version, f"{EDGE} reporting version {version}", site)

    # Central restarts on the same database with the original site file (the kerb zone in it).
    site.restart_central()
    console.login("admin")  # a new address: a new session
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-list li")).to_have_count(1)
    polygon = [[float(v) for v in p.split(",")] for p in page.locator("#zone-polygon").input_value().split(";")]
    assert _close(polygon, redrawn)
    assert _close(_street_zones(site)[KERB_ZONE], redrawn)
    after = _drift(site)
    assert after["desired_version"] == version
    _wait(lambda: _drift(site)["in_sync"] and _drift(site)["applied_version"] == version,
          f"{EDGE} still on version {version} after central's restart", site, timeout=30)

    # The file differs from the database now: the console says so, and how to apply the file.
    page.goto(f"{site.base_url}/#/cameras")
    notice = page.locator(f"#file-differences [data-edge='{EDGE}']")
    expect(notice).to_contain_text("sharpeyes central inventory import FILE")
    expect(notice).to_contain_text(EDGE)
    assert audit(page) == []
    console.screenshot("inventory-file-differs")

    # A later push for another camera of the same edge leaves the redrawn zone alone, at central and on the edge.
    street_url = yaml.safe_load((site.workdir / "site.yaml").read_text())["edges"][0]["cameras"][0]["url"]
    added = _admin(site, "POST", "/api/v1/cameras", {"edge": EDGE, "camera": {
        "id": "street-2", "url": street_url, "detect_fps": 1, "clips": False, "grid_cell": "110101001001"}, "reason": "second view"})
    assert added.status_code == 202, added.text
    lane = [{"id": "lane", "kind": "fire_lane", "polygon": DRIVING_LANE, "dwell_s": 30}]
    pushed = _admin(site, "PUT", "/api/v1/cameras/street-2/zones", {"zones": lane, "reason": "the other camera's zone"})
    assert pushed.status_code == 202, pushed.text
    newest = _drift(site)["desired_version"]
    assert newest == version + 2
    _wait(lambda: site.get(f"/api/v1/commands/{pushed.json()['command_id']}").json()["status"] == "ok",
          "the edge applied the other camera's push", site)
    _wait(lambda: _drift(site)["in_sync"] and _drift(site)["applied_version"] == newest,
          f"{EDGE} reporting version {newest}", site, timeout=30)
    assert _close(_street_zones(site)[KERB_ZONE], redrawn)
    page.goto(f"{site.base_url}/#/zones/{STREET}")
    expect(page.locator("#zone-list li")).to_have_count(1)
    polygon = [[float(v) for v in p.split(",")] for p in page.locator("#zone-polygon").input_value().split(";")]
    assert _close(polygon, redrawn)
    assert not console.errors, console.errors
