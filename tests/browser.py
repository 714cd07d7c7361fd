"""Debian's chromium driven by Playwright: one launcher for the dashboard's browser tests,
the end-to-end tests and the dashboard benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# As root with no network but the registries: no sandbox, no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BROWSER_TZ = "Asia/Seoul"
MISSING = ("needs Debian's chromium at /usr/bin/chromium "
           "(apt-get install chromium; .ci/run installs it)")


@contextmanager
def chromium() -> Iterator[Any]:
    """A fresh headless chromium (for tests that need several independent viewers)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, width: int = 1400, height: int = 1000,
             headers: dict[str, str] | None = None) -> Any:
    """A page in its own context (its own cookies): English UI, Korean time zone;
    ``headers`` go with every request the page makes."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  locale="en-US", timezone_id=BROWSER_TZ,
                                  extra_http_headers=headers)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A page in a fresh headless chromium (English UI, Korean time zone), closed after."""
    with chromium() as browser:
        page = new_page(browser, width, height)
        try:
            yield page
        finally:
            page.context.close()
