"""The centre's loop in a real browser, on incidents a real edge raised from RTSP footage: a monitor
confirms and dispatches with the keyboard; a grid worker accepts on a phone over a slow connection and
reports with a photo; the monitor asks the camera to re-check, the edge still sees the parked cars so the
task comes back for rework, which the worker sees; the second report is checked by a person and closed.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import SLOW_NETWORK
from tests.e2e.site import STREET, WORKFLOW

pytestmark = pytest.mark.timeout(240)
SITE_WORKFLOW = WORKFLOW


def _state(page, text: str, timeout: float = 15_000) -> None:
    expect(page.locator("#preview .badge[class*=state-]").first).to_have_text(text, timeout=timeout)


def test_monitor_confirms_and_dispatches_with_the_keyboard(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    incident = site.wait_for_incident("fire_lane_blocked")
    item = page.locator(f"#q-{incident['id']}")
    expect(item).to_be_visible(timeout=15_000)
    item.click()
    _state(page, "待审核")
    # The zone the edge judged is drawn over the snapshot.
    expect(page.locator("#preview polygon.zone")).to_have_count(1)
    allowed = site.get(f"/api/v1/incidents/{incident['id']}", "monitor").json()["allowed_actions"]
    expect(page.locator("#preview [data-action]")).to_have_count(len(allowed))

    page.keyboard.press("c")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    dialog.locator("textarea, input").first.fill("车辆占用消防通道，属实")
    page.keyboard.press("Enter")
    _state(page, "已立案")

    page.keyboard.press("d")
    dialog = page.locator("dialog[open]")
    dialog.locator("select[name=worker]").select_option("wang-fang")
    dialog.locator("button[type=submit]").click()
    _state(page, "已派遣")
    expect(page.locator("#preview")).to_contain_text("wang-fang")
    console.screenshot("monitor-queue")
    assert not console.errors, console.errors
    assert not console.failed_requests, console.failed_requests


def _worker_phone(console_factory):
    console = console_factory(phone=True)
    cdp = console.context.new_cdp_session(console.page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_NETWORK)
    console.login("wang-fang")
    return console


def test_worker_accepts_on_a_phone(site, console_factory):
    console = _worker_phone(console_factory)
    page = console.page
    task = page.locator("#tasklist .task").first
    expect(task).to_contain_text("消防通道占用")
    expect(task).to_contain_text("已派遣")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    console.screenshot("worker-tasks")
    task.locator("a").click()
    page.locator("button[data-action=accept]").click()
    expect(page.locator(".badge[class*=state-]").first).to_have_text("处置中", timeout=20_000)
    expect(page.locator("#report-form")).to_be_visible()
    assert not console.errors, console.errors


def test_worker_reports_with_a_photo(site, console_factory, frame_photo):
    console = _worker_phone(console_factory)
    page = console.page
    page.locator("#tasklist .task a").first.click()
    form = page.locator("#report-form")
    expect(form.locator("input[type=file][capture=environment]")).to_have_count(1)
    form.locator("#report-note").fill("车辆已挪走，通道畅通")
    form.locator("#report-photos").set_input_files(str(frame_photo))
    expect(form.locator("img.preview-photo")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    console.screenshot("worker-report")
    form.locator("button[type=submit]").click()
    expect(page.locator(".badge[class*=state-]").first).to_have_text("已反馈", timeout=60_000)
    assert not console.errors, console.errors


def test_camera_recheck_still_sees_the_cars_and_sends_the_task_back(site, console_factory):
    incident = site.wait_for_incident("fire_lane_blocked")
    console = console_factory()
    console.login("monitor")
    page = console.page
    page.goto(f"{site.base_url}/#/incident/{incident['id']}")
    feedback = page.locator(".feedback-item")
    expect(feedback).to_contain_text("车辆已挪走")
    expect(feedback.locator("img")).to_have_js_property("complete", True)
    assert feedback.locator("img").evaluate("img => img.naturalWidth") == 1280

    page.locator("button[data-action=check]").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("select[name=mode]").select_option("auto")
    dialog.locator("button[type=submit]").click()
    # The edge re-checks the zone on its live stream: the cars are still parked on the kerb, so the
    # check fails and the task goes back to the worker (rework), without a reload of the page.
    expect(page.locator("#incident-state")).to_have_attribute("data-state", "in_progress", timeout=60_000)
    expect(page.locator(".check-item[data-present=true]")).to_contain_text("隐患仍在")
    expect(page.locator(".gallery [data-kind=check]")).to_have_count(1)
    assert not console.errors, console.errors


def test_worker_sees_the_rework_and_reports_again(site, console_factory, frame_photo):
    console = _worker_phone(console_factory)
    page = console.page
    task = page.locator("#tasklist .task").first
    expect(task.locator("[data-outcome=rework]")).to_be_visible()
    task.locator("a").click()
    form = page.locator("#report-form")
    form.locator("#report-note").fill("已联系车主，车辆已全部挪走")
    form.locator("#report-photos").set_input_files(str(frame_photo))
    form.locator("button[type=submit]").click()
    expect(page.locator(".badge[class*=state-]").first).to_have_text("已反馈", timeout=60_000)
    assert not console.errors, console.errors


def test_monitor_checks_in_person_and_closes_with_full_history(site, console_factory):
    incident = site.wait_for_incident("fire_lane_blocked")
    console = console_factory()
    console.login("monitor")
    page = console.page
    page.goto(f"{site.base_url}/#/incident/{incident['id']}")
    expect(page.locator(".feedback-item")).to_have_count(2)
    page.locator("button[data-action=check]").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("select[name=mode]").select_option("person")
    dialog.locator("button[type=submit]").click()
    expect(page.locator("#incident-state")).to_have_attribute("data-state", "checking")
    page.locator("button[data-action=pass]").click()
    page.locator("dialog[open] button[type=submit]").click()
    expect(page.locator("#incident-state")).to_have_attribute("data-state", "closed")
    expect(page.locator("#incident-state")).to_have_text("已结案")
    # Closed: nothing is left to do, so no action is offered.
    expect(page.locator("button[data-action]")).to_have_count(0)
    history = page.locator("table.history tbody tr")
    actions = [history.nth(i).get_attribute("data-action") for i in range(history.count())]
    for expected in ("confirm", "dispatch", "accept", "feedback", "check", "fail", "pass"):
        assert expected in actions, actions
    expect(page.locator(".gallery [data-kind=photo]")).to_have_count(1)  # the same photo twice is one blob
    console.screenshot("incident", full_page=True)
    assert not console.errors, console.errors


def test_board_and_dashboard_report_the_closed_work(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    page.locator("nav a", has_text="督办看板").click()
    expect(page.locator("#board-grid")).to_contain_text("第一网格")
    page.locator("nav a", has_text="统计").click()
    expect(page.locator("#kpi-closure .kpi-value")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.locator("#grid-index li[data-code='110101001001']")).to_be_visible()
    expect(page.locator(f"#health tr[data-camera={STREET}]")).to_contain_text("在线")
    console.screenshot("dashboard")
    page.locator("#lang").click()
    expect(page.locator("h2")).to_have_text("Dashboard")
    console.screenshot("dashboard-en")
    assert not console.errors, console.errors
    assert not console.failed_requests, console.failed_requests


def test_resident_report_arrives_live_and_is_dismissed_with_the_keyboard(site, console_factory):
    console = console_factory()
    console.login("monitor")
    page = console.page
    expect(page.locator("#live")).to_have_text(re.compile("实时"))
    res = httpx.post(
        f"{site.base_url}/open311/v2/requests.json",
        data={"service_code": "fire_lane_blocked", "address_string": "多福巷12号楼东侧", "description": "消防通道有车辆停放"},
    )
    assert res.status_code == 201, res.text
    request_id = int(res.json()[0]["service_request_id"])
    item = page.locator(f"#q-{request_id}")
    expect(item).to_contain_text("多福巷12号楼东侧", timeout=15_000)
    expect(item).to_contain_text("市民 / 热线上报")
    item.click()
    _state(page, "待审核")
    page.keyboard.press("x")
    dialog = page.locator("dialog[open]")
    # A dismissal needs a reason: submitting without one is stopped by the form.
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_visible()
    dialog.locator("input[name=reason]").fill("与摄像头告警重复")
    page.keyboard.press("Enter")
    expect(item).to_have_count(0)  # closed work leaves the open queue
    incident = site.get(f"/api/v1/incidents/{request_id}", "monitor").json()
    assert (incident["state"], incident["close_reason"]) == ("closed", "false_alarm")
    assert not console.errors, console.errors
