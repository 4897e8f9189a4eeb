"""/docs and /redoc render in a real headless chromium with nothing fetched from outside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from storage import open_store
from tests.services import serve
from tests.web.browser import Browser


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    store = open_store(f"sqlite:///{tmp_path}/lorameter.db")
    with serve(create_app(store)) as url:
        yield url
    store.close()


def test_swagger_ui_renders_offline(browser: Browser, base_url: str, requests_seen) -> None:
    page = browser.page()
    page.goto(f"{base_url}/docs")
    # Swagger UI renders one block per operation from /openapi.json: the script really ran
    page.wait_for_selector("#operations-devices-list_devices_api_v1_devices_get")
    assert page.locator(".opblock").count() >= 6
    assert "lorameter" in page.locator(".title").first.inner_text()
    browser.screenshot(page, "docs-swagger")
    assert any(url.endswith("/swagger-ui-bundle.js") for url in requests_seen)
    page.close()


def test_redoc_renders_offline(browser: Browser, base_url: str, requests_seen) -> None:
    page = browser.page()
    page.goto(f"{base_url}/redoc")
    page.get_by_text("/api/v1/devices/{device_id}/readings").first.wait_for()
    assert page.locator("h1").first.inner_text().startswith("lorameter")
    browser.screenshot(page, "docs-redoc")
    assert any(url.endswith("/redoc.standalone.js") for url in requests_seen)
    # ReDoc's bundle always asks its CDN for a logo; our Content-Security-Policy refuses it
    page.wait_for_timeout(300)
    assert all(url.startswith("https://cdn.redoc.ly/") for url in browser.blocked)
    page.close()
