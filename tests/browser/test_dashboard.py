"""The jobs dashboard in Chromium: what an operator sees and does, live."""

import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pastools_jobs.db.models import Webhook
from pastools_jobs.webhooks.signing import new_secret
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]


def row(page: Page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def test_page_loads_with_the_statistics(page: Page, api: JobsApi) -> None:
    project = new_project()
    done = api.submit("probe", project, items=1)
    api.wait_for_status(done["id"], "completed")

    page.goto(f"{api.stack.url}/?project_id={project}")

    expect(page.locator('[data-stat="total"] .value')).to_have_text("1")
    expect(page.locator('[data-stat="completed"] .value')).to_have_text("1")
    expect(page.locator('[data-stat="failed"] .value')).to_have_text("0")
    expect(row(page, done["id"]).locator(".badge.status-completed")).to_be_visible()
    expect(page.locator("#live")).to_have_text("Live")


def test_job_submitted_with_the_form_appears_and_its_progress_moves(
    page: Page, api: JobsApi
) -> None:
    project = new_project()
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(page.locator("#live")).to_have_text("Live")

    page.locator("#submit-type").select_option("probe")
    page.locator("#submit").get_by_label("Project").fill(project)
    page.locator("#params").get_by_label("Items").fill("40")
    page.locator("#params").get_by_label("Item Ms").fill("100")
    page.get_by_role("button", name="Submit").click()

    expect(page.get_by_role("status").filter(has_text="Submitted probe job")).to_be_visible()
    job = page.locator("#jobs tbody tr").first
    expect(job.locator(".badge.status-running")).to_be_visible()
    progress = job.locator("progress")
    expect(progress).not_to_have_attribute("value", "0", timeout=10_000)
    first = int(progress.get_attribute("value") or 0)
    expect(progress).not_to_have_attribute("value", str(first), timeout=10_000)
    assert int(progress.get_attribute("value") or 0) > first
    expect(job.locator(".badge.status-completed")).to_be_visible(timeout=20_000)
    expect(job.locator(".percent")).to_have_text("100%")


def test_cancel_on_a_running_job_turns_it_cancelled(page: Page, api: JobsApi) -> None:
    project = new_project()
    job = api.submit("probe", project, items=1000, item_ms=50)
    api.wait_running(job["id"])
    page.goto(f"{api.stack.url}/?project_id={project}")

    page.once("dialog", lambda dialog: dialog.accept())
    row(page, job["id"]).get_by_role("button", name="Cancel").click()

    expect(row(page, job["id"]).locator(".badge.status-cancelled")).to_be_visible()
    expect(row(page, job["id"]).get_by_role("button", name="Retry")).to_be_visible()
    assert api.get(job["id"])["status"] == "cancelled"


def test_pause_and_resume_of_a_running_job_from_its_row(page: Page, api: JobsApi) -> None:
    project = new_project()
    job = api.submit("probe", project, items=200, item_ms=50)
    api.wait_running(job["id"])
    page.goto(f"{api.stack.url}/?project_id={project}")

    page.once("dialog", lambda dialog: dialog.accept("night batch"))
    row(page, job["id"]).get_by_role("button", name="Pause").click()

    expect(row(page, job["id"]).locator(".badge.paused")).to_be_visible()
    expect(row(page, job["id"]).locator(".badge.status-running")).to_be_visible()
    expect(page.locator('[data-stat="paused"] .value')).to_have_text("1")
    page.locator('#filters select[name="paused"]').select_option("false")
    expect(row(page, job["id"])).to_have_count(0)
    page.locator('#filters select[name="paused"]').select_option("true")
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, job["id"]).get_by_role("button", name="Resume").click()

    expect(row(page, job["id"]).locator(".badge.paused")).to_have_count(0)
    done = api.wait_for_status(job["id"], "completed")
    assert done["result"]["resumed_from"] > 0


def test_keyboard_focus_on_a_running_job_survives_its_progress_updates(
    page: Page, api: JobsApi
) -> None:
    project = new_project()
    job = api.submit("probe", project, items=1000, item_ms=50)
    api.wait_running(job["id"])
    page.goto(f"{api.stack.url}/?project_id={project}")
    cancel = row(page, job["id"]).get_by_role("button", name="Cancel")
    cancel.focus()

    progress = row(page, job["id"]).locator("progress")
    before = progress.get_attribute("value")
    expect(progress).not_to_have_attribute("value", before or "", timeout=10_000)
    expect(cancel).to_be_focused()
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")
    expect(row(page, job["id"]).locator(".badge.status-cancelled")).to_be_visible()
    # Its Cancel button is gone: the focus stays on the row, not lost to the page.
    expect(row(page, job["id"]).locator("td.id button")).to_be_focused()


def test_dismissing_the_confirmation_does_not_cancel(page: Page, api: JobsApi) -> None:
    project = new_project()
    job = api.submit("probe", project, items=1000, item_ms=50)
    api.wait_running(job["id"])
    page.goto(f"{api.stack.url}/?project_id={project}")

    page.once("dialog", lambda dialog: dialog.dismiss())
    row(page, job["id"]).get_by_role("button", name="Cancel").click()
    expect(row(page, job["id"]).get_by_role("button", name="Cancel")).to_be_enabled()
    assert api.get(job["id"])["cancel_requested"] is False
    api.http.post(f"/api/jobs/{job['id']}/cancel")
    api.wait_for_status(job["id"], "cancelled")


def test_retry_on_a_failed_job_brings_it_back(page: Page, api: JobsApi) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", b"")
    job = api.submit("import", project, source=source)
    api.wait_for_status(job["id"], "failed")
    api.write_import(project, source, "n\n1\n2\n")
    page.goto(f"{api.stack.url}/?project_id={project}")

    page.once("dialog", lambda dialog: dialog.accept("file fixed"))
    row(page, job["id"]).get_by_role("button", name="Retry").click()

    expect(page.get_by_role("status").filter(has_text="queued again")).to_be_visible()
    expect(row(page, job["id"]).locator(".badge.status-completed")).to_be_visible()
    row(page, job["id"]).locator("td.id button").click()
    retried = page.get_by_role("dialog").locator('#actions li[data-action="job.retry"]')
    expect(retried).to_contain_text("Retried by token")
    expect(retried).to_contain_text("via dashboard")
    expect(retried).to_contain_text("file fixed")


def test_filters_change_the_rows_and_the_url_and_survive_a_reload(page: Page, api: JobsApi) -> None:
    project = new_project()
    done = api.submit("probe", project, items=1)
    failed = api.submit_failing_import(project)
    api.wait_for_status(done["id"], "completed")
    api.wait_for_status(failed["id"], "failed")
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)

    page.locator("#filters").get_by_label("Status").select_option("failed")

    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(row(page, failed["id"])).to_be_visible()
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.reload()
    expect(page.locator("#filters").get_by_label("Status")).to_have_value("failed")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator('[data-stat="total"] .value')).to_have_text("2")

    page.locator("#filters").get_by_label("Job id").fill(done["id"][:10])
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(page).not_to_have_url(re.compile(r"status="))


def test_the_parameters_filter_finds_jobs_by_what_they_were_asked_and_stays_in_the_url(
    page: Page, api: JobsApi
) -> None:
    project = new_project()
    one = api.submit("probe", project, items=1)
    api.wait_for_status(one["id"], "completed")
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(row(page, one["id"])).to_be_visible()

    page.locator("#filters").get_by_label("Parameters").fill("items=3")
    expect(page.locator("#empty")).to_be_visible()
    expect(page).to_have_url(re.compile(r"params=items%3D3"))
    three = api.submit("probe", project, items=3)  # arrives live, and matches
    expect(row(page, three["id"])).to_be_visible()
    api.submit("probe", project, items=2)  # arrives live, and does not
    page.reload()
    expect(page.locator("#filters").get_by_label("Parameters")).to_have_value("items=3")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(row(page, three["id"])).to_be_visible()


def test_cancel_all_matching_shows_the_preview_and_cancels_them(page: Page, api: JobsApi) -> None:
    project = new_project()
    jobs = [api.submit("probe", project, items=1000, item_ms=50)["id"] for _ in range(3)]
    done = api.submit("probe", project, items=1)["id"]
    api.wait_for_status(done, "completed")
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(page.locator("#jobs tbody tr")).to_have_count(4)

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_label("All matching").select_option("cancel")
    page.get_by_role("button", name="Apply…").click()

    for job_id in jobs:
        expect(row(page, job_id).locator(".badge.status-cancelled")).to_be_visible(timeout=30_000)
    assert asked and "Cancel all 3 of the 4 matching jobs?" in asked[0]
    expect(row(page, done).locator(".badge.status-completed")).to_be_visible()


def test_detail_view_shows_the_error_of_a_failed_job(page: Page, api: JobsApi) -> None:
    project = api.create_project()
    job = api.submit_failing_import(project, "nowhere.csv")
    api.wait_for_status(job["id"], "failed")
    page.goto(f"{api.stack.url}/?project_id={project}")

    row(page, job["id"]).locator("td.id button").click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".error-box")).to_contain_text("SourceUnusable")
    expect(dialog.locator(".error-box")).to_contain_text("nowhere.csv")
    expect(dialog.get_by_role("link", name=re.compile("Temporal Web UI"))).to_have_attribute(
        "href", re.compile(job["id"])
    )
    expect(page).to_have_url(re.compile(f"job={job['id']}"))
    page.reload()
    expect(page.get_by_role("dialog")).to_be_visible()


def test_detail_view_states_a_test_runs_overall_status(page: Page, api: JobsApi) -> None:
    project = api.create_project()
    suite = [{"kind": "row_count", "name": "some rows", "min": 1, "severity": "warn"}]
    assert api.http.put(f"/api/projects/{project}/tests", json={"tests": suite}).is_success
    job = api.submit("test_run", project)
    api.wait_for_status(job["id"], "completed")
    page.goto(f"{api.stack.url}/?project_id={project}&job={job['id']}")

    verdict = page.get_by_role("dialog").locator(".badge.verdict-warn")
    expect(verdict).to_have_text("warn")
    expect(verdict.locator("..")).to_contain_text("0 passed, 1 warned, 0 failed")


def test_page_says_when_the_api_is_down_and_reconnects_by_itself(
    page: Page, api: JobsApi, stack: Stack
) -> None:
    project = new_project()
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(page.locator("#live")).to_have_text("Live")

    stack.stop_api()
    try:
        expect(page.locator("#offline")).to_be_visible(timeout=10_000)
    finally:
        stack.start_api()

    expect(page.locator("#live")).to_have_text("Live", timeout=15_000)
    expect(page.locator("#offline")).to_be_hidden()
    job = httpx.post(
        f"{stack.url}/api/jobs",
        json={"type": "probe", "project_id": project, "params": {}},
        headers=stack.auth_headers,
    ).json()
    expect(row(page, job["id"]).locator(".badge.status-completed")).to_be_visible()


def test_narrow_window_keeps_the_page_usable_with_the_keyboard(
    browser_context_narrow: Page, api: JobsApi
) -> None:
    page = browser_context_narrow
    project = new_project()
    job = api.submit_failing_import(project)
    api.wait_for_status(job["id"], "failed")
    page.goto(f"{api.stack.url}/?project_id={project}")
    expect(row(page, job["id"])).to_be_visible()

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"
    row(page, job["id"]).locator("td.id button").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_import_submitted_with_an_uploaded_file_and_its_export_downloadable(
    page: Page, api: JobsApi, tmp_path
) -> None:
    project = api.create_project()
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("id,name\n1,Ada\n2,Grace\n")
    page.goto(f"{api.stack.url}/?project_id={project}")

    form = page.locator("#submit")
    form.locator("#submit-type").select_option("import")
    form.get_by_label("Project").fill(project)
    form.get_by_label("Key Column").fill("id")
    form.get_by_label("or upload a file").set_input_files(str(csv_file))
    form.get_by_role("button", name="Submit").click()

    expect(page.locator("#jobs tbody tr .badge.status-completed")).to_have_count(1)
    assert api.http.get(f"/api/projects/{project}").json()["records"] == 2

    export = api.submit("export", project, format="csv")
    api.wait_for_status(export["id"], "completed")
    row(page, export["id"]).locator("td.id button").click()
    link = page.get_by_role("dialog").get_by_role("link", name="export.csv")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "export.csv"
    assert "Grace" in download.value.path().read_text()


def test_the_webhooks_panel_shows_a_webhooks_delivery_log(page: Page, api: JobsApi) -> None:
    """This stack allows no loopback URL, so the webhook is written as an older version
    (or a hand edit) could have left it: the delivery refuses the address, and its log
    says so."""
    project = api.create_project()
    webhook_id = f"wh_{uuid.uuid4().hex}"
    engine = create_engine(api.stack.database_url)  # Playwright holds this thread's loop
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add(
            Webhook(
                id=webhook_id,
                project_id=project,
                url="http://127.0.0.1:9/hook",
                events=["job.failed"],
                format="standard",
                secret=new_secret(),
                description="on call",
                enabled=True,
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    job = api.submit_failing_import(project)
    log = f"/api/projects/{project}/webhooks/{webhook_id}/deliveries"
    wait_for(
        lambda: [d for d in api.http.get(log).json()["items"] if d["status"] == "failed"],
        what="the refused delivery",
    )
    page.goto(f"{api.stack.url}/?project_id={project}")

    hook = page.locator(f'tr[data-webhook-id="{webhook_id}"]')
    expect(hook).to_contain_text("http://127.0.0.1:9/hook")
    expect(hook).to_contain_text("on call")
    hook.get_by_role("button", name="Log").click()

    delivery = page.locator("#delivery-log tbody tr")
    expect(delivery).to_have_count(1)
    expect(delivery).to_contain_text(job["id"])
    expect(delivery.locator(".badge")).to_have_text("failed")
    expect(delivery).to_contain_text("loopback")
