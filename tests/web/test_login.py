"""The web view behind API keys in a real headless chromium: the login form, the cookie, the
pages, the docs, logging out; a read key sees no raw payloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from api.deps import ApiOptions
from api.main import create_app
from storage import open_store
from storage.api_keys import SQLiteKeys
from tests.demo_data import Fleet, demo_fleet, load
from tests.services import serve
from tests.web.browser import Browser
from tests.web.site import END
from tests.web.test_pages import listed


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return demo_fleet(8)


@pytest.fixture(scope="module")
def served(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("web-keys") / "lorameter.db"
    store = open_store(f"sqlite:///{path}")
    load(store, fleet, END, 0.5)
    keys = SQLiteKeys(path)
    options = ApiOptions(meters=fleet.registry.meter_configs())
    with serve(create_app(store, options=options, keys=keys)) as url:
        yield url, path
    keys.close()
    store.close()


@pytest.fixture
def page(browser: Browser, requests_seen: list[str]) -> Iterator[Page]:
    tab = browser.page()
    yield tab
    tab.close()
    browser.context.clear_cookies()  # the profile is shared: leave no key behind


def test_login_form_cookie_pages_and_logout(
    page: Page, browser: Browser, served: tuple[str, Path], fleet: Fleet
) -> None:
    url, path = served
    keys = SQLiteKeys(path)
    token = keys.create("leitstelle", ["read"]).token
    keys.close()
    meter = fleet.meters[0].device_id
    response = page.goto(f"{url}/meters/{meter}")
    assert response is not None and response.status == 401
    assert page.locator("input[name=key]").is_visible()
    browser.screenshot(page, "web-login")

    page.fill("input[name=key]", token[:-2] + "xx")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "not valid" in page.inner_text("p.msg")

    page.fill("input[name=key]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/meters/{meter}")
    assert meter in page.inner_text("main")
    assert "raw</code> scope" in page.content()  # a read key: no payloads on the page
    assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"  # style.css came

    page.click("header.top a.brand")
    page.wait_for_url(f"{url}/")
    assert sorted(listed(page)) == sorted(m.device_id for m in fleet.meters)
    assert not page.evaluate("document.cookie")  # HttpOnly: scripts cannot read the key

    docs = page.goto(f"{url}/docs")
    assert docs is not None and docs.status == 200
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # openapi.json with the cookie

    page.goto(f"{url}/")
    page.click("form.logout button")
    page.wait_for_url(f"{url}/login")
    again = page.goto(f"{url}/")
    assert again is not None and again.status == 401
