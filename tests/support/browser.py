"""Debian's Chromium driven by Playwright (its own browser download does not work here)."""

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.services import Stack

CHROMIUM = "/usr/bin/chromium"
# The machine has no network: keep Chromium from trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, stack: Stack, token: str | None = None) -> None:
    """The real flow: the sign-in link `pastools up` prints, then the dashboard."""
    page.goto(f"{stack.url}/login#token={token or stack.admin_token}")
    page.wait_for_url(f"{stack.url}/")
