"""Per-job logs through a real stack, on both databases: a probe job's lines in order
with their attempt across a worker killed mid-job, pages and the text download, the cap,
project scoping, and cleanup removing them."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, JobLogLine
from tests.integration.test_doctor import edit_rows
from tests.support.jobs import JobsApi
from tests.support.waiting import wait_for


def logs(api: JobsApi, job_id: str, **query: int) -> dict:
    response = api.http.get(f"/api/jobs/{job_id}/logs", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def item_numbers(lines: list[dict]) -> list[int]:
    """`Processed item 7 of 40` → 7."""
    return [int(line["message"].split()[2]) for line in lines]


def test_a_jobs_lines_in_order_with_the_attempt_that_logged_them(api: JobsApi) -> None:
    project = api.create_project()
    job = api.submit("probe", project, items=40, item_ms=150, log_every=1)
    api.wait_running(job["id"], min_done=10)
    wait_for(lambda: logs(api, job["id"])["lines"], what="lines written while the job runs")
    api.wait_checkpointed(job["id"])
    api.stack.kill_worker()
    api.stack.start_worker()
    done = api.wait_for_status(job["id"], "completed", timeout=60)
    resumed_from = done["result"]["resumed_from"]
    assert resumed_from > 0

    body = logs(api, job["id"])
    lines = body["lines"]
    assert body["dropped"] == 0 and body["next_after"] is None
    assert [line["seq"] for line in lines] == sorted({line["seq"] for line in lines})
    assert {line["level"] for line in lines} == {"INFO"}
    assert len({line["run_id"] for line in lines}) == 1, "one run: its activity was retried"
    first = [line for line in lines if line["attempt"] == 1]
    second = [line for line in lines if line["attempt"] == 2]
    assert first + second == lines, "the retried attempt's lines follow the first's"
    # The first attempt's last lines may have died with the worker, unwritten.
    assert item_numbers(first) == list(range(1, len(first) + 1)) and first
    assert item_numbers(second) == list(range(resumed_from + 1, 41))
    assert lines[0]["message"] == "Processed item 1 of 40"

    page = logs(api, job["id"], after=lines[4]["seq"], limit=3)
    assert page["lines"] == lines[5:8] and page["next_after"] == lines[7]["seq"]

    text = api.http.get(f"/api/jobs/{job['id']}/logs", params={"format": "text"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["content-disposition"] == f'attachment; filename="job-{job["id"]}.log"'
    text_lines = text.text.splitlines()
    assert len(text_lines) == len(lines)
    assert text_lines[0].endswith(" INFO attempt 1: Processed item 1 of 40")
    assert text_lines[-1].endswith(" INFO attempt 2: Processed item 40 of 40")
    accepted = api.http.get(f"/api/jobs/{job['id']}/logs", headers={"Accept": "text/plain"})
    assert accepted.text == text.text

    for role, project_of_token, expected in [
        ("viewer", project, 200),
        ("viewer", api.create_project(), 404),
    ]:
        token = api.stack.create_token(role, project_of_token)
        with httpx.Client(base_url=api.stack.url, timeout=30) as client:
            answer = client.get(
                f"/api/jobs/{job['id']}/logs", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == expected, answer.text
    assert api.http.get("/api/jobs/no-such-job/logs").status_code == 404


def test_the_newest_lines_are_kept_and_cleanup_removes_them(api: JobsApi) -> None:
    job = api.submit("probe", api.create_project(), items=1500, log_every=1)
    api.wait_for_status(job["id"], "completed", timeout=60)

    body = logs(api, job["id"], limit=10_000)
    assert body["dropped"] == 500, "the default cap keeps 1,000 lines"
    assert item_numbers(body["lines"]) == list(range(501, 1501))
    assert [line["seq"] for line in body["lines"]] == list(range(501, 1501))
    text = api.http.get(f"/api/jobs/{job['id']}/logs?format=text").text
    assert text.splitlines()[0] == "# 500 earlier lines were not kept"

    long_ago = datetime.now(UTC) - timedelta(days=40)
    edit_rows(api.stack, update(Job).where(Job.id == job["id"]).values(completed_at=long_ago))
    cleanup = api.http.post("/api/jobs/cleanup", json={"older_than_days": 30})
    assert cleanup.status_code == 200 and cleanup.json()["deleted"] >= 1
    assert api.http.get(f"/api/jobs/{job['id']}/logs").status_code == 404
    db = Database(api.stack.database_url, application_name="pastools-tests")
    try:
        with db.reading() as connection:
            left = connection.scalar(
                select(func.count()).select_from(JobLogLine).where(JobLogLine.job_id == job["id"])
            )
    finally:
        db.dispose()
    assert left == 0
