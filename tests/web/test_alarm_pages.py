"""The alarms in the web view, in a real headless chromium: alarms page, ack form, fleet badges,
the meter page's alarms section, and a process without alarm tables.

The alarms were raised by the real alarm engine into the real alarm tables of the site's SQLite
file while the demo-like history went through the pipeline (tests/web/site.py): the demo fleet's
leak flag on water-003, the low battery of pulse-006, the silent heat-004 (active) and the six
silent hours of heat-000 (cleared). Screenshots land in build/screenshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from api.deps import ApiOptions
from api.main import create_app
from storage import open_store
from tests.demo_data import ZONE  # ApiOptions' default zone, the site's
from tests.services import serve
from tests.web.browser import Browser
from tests.web.site import Site

ALARM_ROWS = "table.alarms tbody tr[data-alarm]"


def shown(page: Page) -> list[dict[str, Any]]:
    """The rows of the page's alarm table, in order."""
    rows: list[dict[str, Any]] = page.locator(ALARM_ROWS).evaluate_all(
        "rows => rows.map(r => ({id: Number(r.dataset.alarm), device: r.dataset.device,"
        " kind: r.dataset.kind, state: r.dataset.state, acked: r.dataset.acked}))"
    )
    return rows


def row(page: Page, device: str, kind: str, state: str = "active") -> Any:
    return page.locator(
        f"{ALARM_ROWS}[data-device='{device}'][data-kind='{kind}'][data-state='{state}']"
    )


def api_alarm(site: Site, device: str, kind: str) -> dict[str, Any]:
    """The alarm as the JSON API shows it."""
    answer = httpx.get(
        f"{site.url}/api/v1/alarms", params={"state": "all", "device": device, "kind": kind}
    )
    assert answer.status_code == 200, answer.text
    (alarm,) = answer.json()
    found: dict[str, Any] = alarm
    return found


def test_alarms_page_lists_active_alarms_first(page: Page, browser: Browser, site: Site) -> None:
    page.goto(f"{site.url}/")
    page.click("header nav a:has-text('Alarms')")  # one click from the fleet list
    page.wait_for_url("**/alarms")
    rows = shown(page)
    stored = site.alarms.alarms(state="all")
    assert sorted(r["id"] for r in rows) == sorted(a.id for a in stored)
    states = [r["state"] for r in rows]
    assert states == sorted(states)  # every active one before the first cleared one
    active = {(r["device"], r["kind"]) for r in rows if r["state"] == "active"}
    assert {("water-003", "leak"), ("pulse-006", "low_battery"), ("heat-004", "silent")} <= active
    assert active == {(a.device, a.kind) for a in stored if a.state == "active"}
    cleared = {(r["device"], r["kind"]) for r in rows if r["state"] == "cleared"}
    assert ("heat-000", "silent") in cleared
    # the store gives newest raised first: the cleared silent spell of yesterday came after the
    # low battery of three days ago, which the page shows above it
    ids = [r["id"] for r in rows]
    gap_id = next(r["id"] for r in rows if r["device"] == "heat-000")
    low_battery = next(r["id"] for r in rows if r["kind"] == "low_battery")
    assert ids.index(low_battery) < ids.index(gap_id)

    leak = next(a for a in stored if a.kind == "leak")
    meter = next(m for m in site.fleet.meters if m.device_id == "water-003")
    text = row(page, "water-003", "leak").inner_text()
    assert meter.meter in text and meter.site in text and leak.reason in text
    assert leak.raised_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") in text
    assert leak.last_seen_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") in text
    assert f"\t{leak.count}\t" in text and leak.count == 4  # the four leaking uplinks
    assert row(page, "water-003", "leak").locator("form.ack input[name=by]").count() == 1
    gap = row(page, "heat-000", "silent", "cleared").inner_text()
    assert "cleared" in gap and "uplinks arrive" in gap
    nav = page.locator("header nav a:has-text('Alarms') .count").inner_text()
    assert nav == str(len(active))
    browser.screenshot(page, "web-alarms")


def test_filter_by_state_and_kind(page: Page, browser: Browser, site: Site) -> None:
    page.goto(f"{site.url}/alarms")
    page.click(".switch a:text-is('cleared')")
    page.wait_for_url("**state=cleared*")
    rows = shown(page)
    assert rows and {r["state"] for r in rows} == {"cleared"}
    assert {r["id"] for r in rows} == {a.id for a in site.alarms.alarms(state="cleared")}

    page.click(".switch a:text-is('active')")
    page.wait_for_url("**state=active*")
    assert {r["state"] for r in shown(page)} == {"active"}
    page.select_option("select[name=kind]", "silent")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**kind=silent*")
    assert [(r["device"], r["state"]) for r in shown(page)] == [("heat-004", "active")]
    browser.screenshot(page, "web-alarms-filtered")

    page.click(".switch a:text-is('all')")  # the kind stays
    page.wait_for_url("**state=all*")
    rows = shown(page)
    assert [(r["device"], r["state"]) for r in rows] == [
        ("heat-004", "active"),
        ("heat-000", "cleared"),
    ]
    page.goto(f"{site.url}/alarms?kind=leak&state=cleared")
    assert shown(page) == [] and "No alarms" in page.inner_text("table.alarms")
    assert httpx.get(f"{site.url}/alarms?state=open").status_code == 422
    assert httpx.get(f"{site.url}/alarms?kind=fire").status_code == 422


def test_ack_form_acknowledges_the_alarm(page: Page, browser: Browser, site: Site) -> None:
    page.goto(f"{site.url}/alarms")
    before = api_alarm(site, "pulse-006", "low_battery")
    assert before["acknowledged"] is False
    target = row(page, "pulse-006", "low_battery")
    target.locator("input[name=by]").fill("anna")
    target.locator("input[name=note]").fill("battery ordered")
    browser.screenshot(page, "web-alarms-ack-form", f"#alarm-{before['id']}")
    target.locator("button:text-is('Ack')").click()
    page.wait_for_url(f"**acked={before['id']}*")
    assert page.url.endswith(f"#alarm-{before['id']}")

    target = row(page, "pulse-006", "low_battery")
    assert target.get_attribute("data-acked") == "yes"
    assert target.locator("form.ack").count() == 0
    text = target.inner_text()
    assert "anna" in text and "battery ordered" in text
    assert "acknowledged by anna" in page.inner_text(".notice.ok")
    browser.screenshot(page, "web-alarms-acked")

    after = api_alarm(site, "pulse-006", "low_battery")  # the API agrees
    assert after["acknowledged"] is True and after["state"] == "active"
    assert (after["acked_by"], after["ack_note"]) == ("anna", "battery ordered")
    # the other alarms are untouched
    assert api_alarm(site, "water-003", "leak")["acknowledged"] is False


def test_ack_needs_who_and_an_existing_alarm(page: Page, site: Site) -> None:
    leak = api_alarm(site, "water-003", "leak")
    page.goto(f"{site.url}/alarms")
    target = row(page, "water-003", "leak")
    target.locator("button:text-is('Ack')").click()  # no name: the browser does not send it
    assert target.locator("input[name=by]").evaluate("e => e.validity.valueMissing")
    assert "acked" not in page.url

    answer = httpx.post(f"{site.url}/alarms", data={"alarm": leak["id"], "by": "  ", "note": "x"})
    assert answer.status_code == 422 and "was not acknowledged" in answer.text
    assert "by:" in answer.text and api_alarm(site, "water-003", "leak")["acknowledged"] is False
    answer = httpx.post(f"{site.url}/alarms", data={"alarm": leak["id"], "by": "b" * 201})
    assert answer.status_code == 422 and api_alarm(site, "water-003", "leak")["acked_by"] == ""
    answer = httpx.post(f"{site.url}/alarms", data={"alarm": 999_999, "by": "anna"})
    assert answer.status_code == 404 and "not found" in answer.text
    # another site's page cannot post the form (the browser names that page's origin)
    forged = {"alarm": leak["id"], "by": "mallory"}
    answer = httpx.post(f"{site.url}/alarms", data=forged, headers={"Origin": "http://evil.test"})
    assert answer.status_code == 403 and api_alarm(site, "water-003", "leak")["acked_by"] == ""


def test_fleet_list_shows_active_alarms(page: Page, browser: Browser, site: Site) -> None:
    page.goto(f"{site.url}/")
    badges: dict[str, list[str]] = page.locator("table.fleet tbody tr[data-device]").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.device,"
        " [...r.querySelectorAll('.badge.alarm')].map(b => b.textContent)]))"
    )
    expected: dict[str, list[str]] = {m.device_id: [] for m in site.fleet.meters}
    for alarm in site.alarms.alarms(state="active"):
        expected[alarm.device].append(alarm.kind)
    assert {d: sorted(k) for d, k in badges.items()} == {d: sorted(k) for d, k in expected.items()}
    assert "leak" in badges["water-003"] and "low_battery" in badges["pulse-006"]
    assert badges["heat-000"] == [] and badges["electricity-002"] == []  # cleared / healthy
    browser.screenshot(page, "web-fleet-alarms")

    page.click("tr[data-device='water-003'] a.badge.alarm:text-is('leak')")  # two clicks
    page.wait_for_url("**/meters/water-003#alarms")
    assert page.locator("section#alarms").is_visible()
    assert [(r["kind"], r["state"]) for r in shown(page)] == [("leak", "active")]
    browser.screenshot(page, "web-meter-with-alarm")


def test_meter_page_alarms_and_ack(page: Page, browser: Browser, site: Site) -> None:
    page.goto(f"{site.url}/")
    page.click("a:text-is('heat-004')")
    page.wait_for_url("**/meters/heat-004")
    assert [(r["kind"], r["state"], r["acked"]) for r in shown(page)] == [
        ("silent", "active", "no")
    ]
    target = row(page, "heat-004", "silent")
    target.locator("input[name=by]").fill("ben")
    target.locator("button:text-is('Ack')").click()
    page.wait_for_url("**/meters/heat-004?acked=*")  # back on the meter page
    assert row(page, "heat-004", "silent").get_attribute("data-acked") == "yes"
    assert "acknowledged by ben" in page.inner_text("section#alarms")
    assert api_alarm(site, "heat-004", "silent")["acked_by"] == "ben"
    browser.screenshot(page, "web-meter-alarms", "section#alarms")

    page.goto(f"{site.url}/meters/heat-000")
    assert [(r["kind"], r["state"]) for r in shown(page)] == [("silent", "cleared")]
    page.goto(f"{site.url}/meters/electricity-002")
    assert "No alarms on this meter" in page.inner_text("section#alarms")


@pytest.fixture
def without_alarms(site: Site) -> Iterator[str]:
    """The same store served by a process that has no alarm tables."""
    store = open_store(f"sqlite:///{site.db}")
    options = ApiOptions(meters=site.fleet.registry.meter_configs())
    with serve(create_app(store, options=options)) as url:
        yield url
    store.close()


def test_without_alarm_tables_the_pages_say_so(
    page: Page, browser: Browser, without_alarms: str
) -> None:
    page.goto(f"{without_alarms}/")
    assert page.locator("table.fleet tbody tr[data-device]").count() == 16
    assert page.locator(".badge.alarm").count() == 0
    assert page.locator("header nav .count").count() == 0
    page.click("header nav a:has-text('Alarms')")
    page.wait_for_url("**/alarms")
    assert "Alarms are not set up" in page.inner_text("main")
    browser.screenshot(page, "web-alarms-not-set-up")
    page.goto(f"{without_alarms}/meters/water-003")
    assert "Alarms are not set up" in page.inner_text("section#alarms")
    answer = httpx.post(f"{without_alarms}/alarms", data={"alarm": 1, "by": "anna"})
    assert answer.status_code == 503 and "not set up" in answer.text
