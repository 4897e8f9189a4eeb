"""The web view in a real headless chromium over demo-like data in a real SQLite file.

The fleet's history went through the real pipeline into the store; the pages are served by
uvicorn on 127.0.0.1 and driven by Debian's chromium. Screenshots land in build/screenshots.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page

from tests.demo_data import Fleet
from tests.web.browser import Browser
from tests.web.site import Site, last_uplink


@pytest.fixture(scope="module")
def fleet(site: Site) -> Fleet:
    return site.fleet


@pytest.fixture(scope="module")
def base_url(site: Site) -> str:
    return site.url


def listed(page: Page) -> list[str]:
    found: list[str] = page.locator("table.fleet tbody tr[data-device]").evaluate_all(
        "rows => rows.map(r => r.dataset.device)"
    )
    return found


def test_fleet_page_lists_every_meter(page: Page, browser: Browser, base_url: str, fleet) -> None:
    page.goto(f"{base_url}/")
    assert sorted(listed(page)) == sorted(m.device_id for m in fleet.meters)
    row = page.locator("tr[data-device='electricity-002']")
    meter = next(m for m in fleet.meters if m.device_id == "electricity-002")
    text = row.inner_text()
    assert meter.meter in text and meter.site in text and meter.dev_eui.upper() in text
    assert f"{meter.register(last_uplink(meter)):,.3f} kWh" in text  # at the last uplink
    assert "ago" in text
    water = page.locator("tr[data-device='pulse-006']").inner_text()
    assert "%" in water and "dBm" in water  # battery and link
    browser.screenshot(page, "web-fleet")


def test_search_narrows_the_list(page: Page, browser: Browser, base_url: str, fleet) -> None:
    page.goto(f"{base_url}/")
    meter = fleet.meters[5]
    page.fill("input[name=q]", meter.meter)
    page.click("button[type=submit]")
    page.wait_for_url("**/?q=*")
    assert listed(page) == [meter.device_id]
    browser.screenshot(page, "web-fleet-search")

    page.fill("input[name=q]", meter.dev_eui.upper())  # DevEUI, as printed on the label
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert listed(page) == [meter.device_id]

    page.fill("input[name=q]", "")
    page.select_option("select[name=medium]", "water")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert sorted(listed(page)) == sorted(d for d, m in fleet.media.items() if m == "water")

    page.select_option("select[name=medium]", "")
    page.select_option("select[name=site]", "hallenbad")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert sorted(listed(page)) == sorted(
        m.device_id for m in fleet.meters if m.site == "hallenbad"
    )
    assert listed(page)

    page.goto(f"{base_url}/?q=no-such-meter")
    assert listed(page) == [] and "No meter matches" in page.inner_text("table.fleet")


def bars(page: Page) -> int:
    return page.locator("figure.consumption svg .series rect.rect").count()


def expected_bars(base_url: str, page: Page, device: str) -> tuple[int, int]:
    """(measured intervals, intervals) of the figure's window, from the JSON API."""
    figure = page.locator("figure.consumption")
    window = {k: figure.get_attribute(f"data-{k}") for k in ("from", "to", "interval")}
    answer = httpx.get(
        f"{base_url}/api/v1/devices/{quote(device)}/consumption",
        params={**window, "tz": "Europe/Berlin"},
        timeout=30,
    ).json()
    items = answer["items"]
    return sum(i["consumption"] is not None for i in items), len(items)


def test_meter_page_draws_one_bar_per_measured_interval(
    page: Page, browser: Browser, base_url: str, fleet
) -> None:
    page.goto(f"{base_url}/")
    page.click("a:text-is('electricity-002')")  # one click from the fleet list
    page.wait_for_selector("figure.consumption svg")
    assert page.url.endswith("/meters/electricity-002")
    meter = next(m for m in fleet.meters if m.device_id == "electricity-002")
    register = page.locator(".card.register").inner_text()
    assert f"{meter.register(last_uplink(meter)):,.3f}" in register and "kWh" in register
    assert meter.meter in register
    # 31 days per day: the 3 days of history give 2 to 3 whole local days
    measured, intervals = expected_bars(base_url, page, "electricity-002")
    assert intervals in (31, 32) and 2 <= measured <= 3
    assert bars(page) == measured
    browser.screenshot(page, "web-meter-day")

    page.click(".switch a:text-is('24h')")
    page.wait_for_url("**range=24h*")
    measured, intervals = expected_bars(base_url, page, "electricity-002")
    assert intervals in (24, 25) and measured >= 23
    assert bars(page) == measured
    browser.screenshot(page, "web-meter-hour", "figure.consumption")

    page.click(".switch a:text-is('1y')")
    page.wait_for_url("**range=1y*")
    measured, _ = expected_bars(base_url, page, "electricity-002")
    assert bars(page) == measured <= 2

    # the tables of the same device
    assert page.locator("table.readings tbody tr").count() == 20
    assert "energy_import_kwh" in page.inner_text("table.readings")
    uplinks = page.locator("table.uplinks tbody tr")
    assert uplinks.count() == 20 and "10" in uplinks.first.inner_text()  # fPort 10


def test_csv_download(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/meters/water-001?range=31d&interval=day")
    href = page.get_attribute("a.download", "href")
    assert href is not None
    response = page.request.get(f"{base_url}/meters/{href}")
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    lines = response.text().splitlines()
    assert lines[0].startswith("device,meter,field,unit,start,end,consumption")
    assert len(lines) - 1 == int(page.get_attribute("figure.consumption", "data-intervals") or 0)


def test_dead_letters_are_two_clicks_away(page: Page, browser: Browser, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.click("header nav a:text-is('Dead letters')")
    page.wait_for_url("**/dead-letters")
    rows = page.locator("table.letters tbody tr")
    assert rows.count() == 3  # the demo's three broken messages
    assert {"not_json", "unknown_device"} <= set(page.locator(".badge").all_inner_texts())
    browser.screenshot(page, "web-dead-letters")
    page.click(".switch a:text-is('not_json')")
    page.wait_for_url("**reason=not_json")
    assert page.locator("table.letters tbody tr").count() == 1


def test_unknown_meter_is_404(base_url: str) -> None:
    response = httpx.get(f"{base_url}/meters/nope", timeout=10)
    assert response.status_code == 404 and "not found" in response.text


def test_assets_are_served_by_lorameter(base_url: str) -> None:
    css = httpx.get(f"{base_url}/static/style.css", timeout=10)
    assert css.status_code == 200 and "figure.consumption" in css.text
    page = httpx.get(f"{base_url}/", timeout=10)
    assert "Content-Security-Policy" in page.headers
    assert "http://" not in page.text.replace(base_url, "") and "https://" not in page.text


def test_meter_page_for_every_medium(page: Page, base_url: str, fleet: Fleet) -> None:
    for medium in ("heat", "water", "gas", "electricity"):
        device = next(d for d, m in fleet.media.items() if m == medium)
        page.goto(f"{base_url}/meters/{device}")
        assert bars(page) >= 2, medium
        assert any(c.isdigit() for c in page.locator(".card.register .value").inner_text())
