"""Signing in to the dashboard in Chromium: the form, the link's fragment, signing out."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]


@pytest.fixture
def signed_out(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_signed_out_the_dashboard_sends_to_login(signed_out: Page, stack: Stack) -> None:
    signed_out.goto(f"{stack.url}/?project_id=x")
    expect(signed_out).to_have_url(f"{stack.url}/login")
    expect(signed_out.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_wrong_token_is_told_and_a_right_one_opens_the_dashboard(
    signed_out: Page, api: JobsApi
) -> None:
    stack = api.stack
    project = new_project()
    job = api.submit("probe", project, items=1)
    api.wait_for_status(job["id"], "completed")
    signed_out.goto(f"{stack.url}/login")
    form = signed_out.locator("#login")
    form.get_by_label("Token").fill("pst_wrong_token")
    form.get_by_role("button", name="Sign in").click()
    expect(signed_out.get_by_role("alert")).to_contain_text("unknown")

    form.get_by_label("Token").fill(stack.create_token("viewer", project))
    form.get_by_role("button", name="Sign in").click()
    expect(signed_out).to_have_url(f"{stack.url}/")
    expect(signed_out.locator("#live")).to_have_text("Live")
    # A viewer of one project: "all projects" is that project.
    expect(signed_out.locator('[data-stat="total"] .value')).to_have_text("1")
    expect(signed_out.locator(f'tr[data-job-id="{job["id"]}"]')).to_be_visible()

    signed_out.get_by_role("button", name="Sign out").click()
    expect(signed_out).to_have_url(f"{stack.url}/login")
    signed_out.goto(f"{stack.url}/")
    expect(signed_out).to_have_url(f"{stack.url}/login")


def test_the_link_signs_in_and_leaves_no_token_in_the_address(
    signed_out: Page, stack: Stack
) -> None:
    signed_out.goto(f"{stack.url}/login#token={stack.admin_token}")
    expect(signed_out).to_have_url(f"{stack.url}/")
    expect(signed_out.locator("#live")).to_have_text("Live")
    assert stack.admin_token not in signed_out.evaluate("history.length + location.href")
