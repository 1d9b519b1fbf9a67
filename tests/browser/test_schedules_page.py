"""The Schedules page in Chromium: a schedule added with its form, run now, its run seen."""

import pytest
from playwright.sync_api import Page, expect

from tests.support.jobs import JobsApi

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]


def test_a_schedule_added_on_the_page_runs_when_triggered(page: Page, api: JobsApi) -> None:
    project = api.create_project()
    page.goto(f"{api.stack.url}/schedules?project_id={project}")
    expect(page.locator("#schedules-empty")).to_be_visible()

    form = page.locator("#create")
    form.locator('[name="id"]').fill("weekly")
    form.locator('[name="type"]').select_option("probe")
    form.get_by_label("Parameters (JSON)").fill('{"items": 1}')
    form.get_by_label("Cron expressions, one a line").fill("0 3 * * 1")
    form.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Add").click()

    schedule = page.locator('tr[data-schedule-id="weekly"]')
    expect(schedule).to_contain_text("cron 0 3 * * 1 (Europe/Berlin)")
    expect(schedule.locator(".schedule-state")).to_have_text("active")
    schedule.get_by_role("button", name="Run now").click()
    expect(schedule.locator("ul.runs")).to_contain_text("completed", timeout=30_000)

    schedule.locator("ul.runs a").first.click()
    expect(page.locator("#detail")).to_contain_text("weekly")
    expect(page.locator("#detail .badge.status-completed")).to_be_visible()
