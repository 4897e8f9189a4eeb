"""Fixtures of the web tests: one headless chromium for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from tests.web.browser import Browser, launch


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    profile = tmp_path_factory.mktemp("chromium")
    with sync_playwright() as playwright, launch(playwright, profile) as b:
        yield b


@pytest.fixture
def requests_seen(browser: Browser) -> Iterator[list[str]]:
    """The requests of this test only; it fails if any left 127.0.0.1."""
    browser.requests.clear()
    browser.blocked.clear()
    yield browser.requests
    assert browser.remote_requests() == [], "requests left the machine"
