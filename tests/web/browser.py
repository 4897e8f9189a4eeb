"""A real headless chromium (Debian's) driven by Playwright, and lorameter served on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Playwright, Request

__all__ = ["CHROMIUM", "SCREENSHOTS", "Browser", "launch"]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `playwright install` is never used
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension"}


@dataclass
class Browser:
    """One chromium profile; every request any page makes is recorded in ``requests``.

    ``blocked`` holds those chromium refused to send because lorameter's Content-Security-Policy
    forbids them (they never left the browser).
    """

    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def page(self) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(15_000)
        return page

    def remote_requests(self) -> list[str]:
        """Requests that went (or tried to go) anywhere but 127.0.0.1."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in _LOCAL_SCHEMES
            and urlsplit(url).hostname != "127.0.0.1"
            and url not in self.blocked
        ]

    def screenshot(self, page: Page, name: str, selector: str = "") -> Path:
        """The whole page, or only the element ``selector``, as build/screenshots/NAME.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if selector:
            page.locator(selector).screenshot(path=str(path))
        else:
            page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def launch(playwright: Playwright, profile: Path) -> Iterator[Browser]:
    """Headless chromium with a fresh profile in ``profile``."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (make test does it)")
    shutil.rmtree(profile, ignore_errors=True)
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=_FLAGS,
        viewport={"width": 1280, "height": 900},
    )
    browser = Browser(context)

    def record(request: Request) -> None:
        browser.requests.append(request.url)

    def refused(request: Request) -> None:
        if request.failure == "csp":
            browser.blocked.append(request.url)

    context.on("request", record)
    context.on("requestfailed", refused)
    try:
        yield browser
    finally:
        context.close()
