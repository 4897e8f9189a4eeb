"""Fixtures of the web tests: one headless chromium and one demo site for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.web.browser import Browser, launch
from tests.web.site import Site, demo_site


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    profile = tmp_path_factory.mktemp("chromium")
    with sync_playwright() as playwright, launch(playwright, profile) as b:
        yield b


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with demo_site(tmp_path_factory.mktemp("web")) as s:
        yield s


@pytest.fixture
def requests_seen(browser: Browser) -> Iterator[list[str]]:
    """The requests of this test only; it fails if any left 127.0.0.1."""
    browser.requests.clear()
    browser.blocked.clear()
    yield browser.requests
    assert browser.remote_requests() == [], "requests left the machine"


@pytest.fixture
def page(browser: Browser, requests_seen: list[str]) -> Iterator[Page]:
    """A fresh tab; the test fails if any of its requests left 127.0.0.1."""
    tab = browser.page()
    yield tab
    tab.close()
