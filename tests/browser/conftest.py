"""A real browser on the dashboard of the SQLite stack."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import chromium, sign_in
from tests.support.services import Stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API holds an event loop open while it runs."""
    with chromium() as running:
        yield running


def _page(browser: Browser, stack: Stack, width: int, height: int) -> Iterator[Page]:
    """Signed in as the stack's admin, through /login as a user would."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, stack)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    yield from _page(browser, stack, 1280, 900)


@pytest.fixture
def browser_context_narrow(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A phone-sized window."""
    yield from _page(browser, stack, 390, 800)
