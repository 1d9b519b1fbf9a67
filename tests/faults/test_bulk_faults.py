"""SIGKILL of the worker in the middle of a bulk deletion: the retried attempt resumes
at its page, and the result counts every deleted job exactly once."""

import pytest

from tests.support.datasets import work_attempts
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.rows import write_finished

pytestmark = pytest.mark.integration

JOBS = 10_000


def test_a_bulk_delete_killed_mid_way_deletes_and_counts_every_job_once(
    fault_api: JobsApi,
) -> None:
    api = fault_api
    project = new_project()
    write_finished(api.stack.database_url, project, JOBS, status="failed")
    body = {"action": "delete", "filter": {"project_id": project}, "page_size": 10}
    started = api.http.post("/api/jobs/bulk", json=body)
    assert started.status_code == 201, started.text
    bulk = started.json()["id"]
    api.wait_running(bulk, min_done=100)

    api.stack.kill_worker()
    api.stack.start_worker()

    done = api.wait_for_status(bulk, "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["error"]
    assert work_attempts(api, bulk) >= 2, "the kill did not interrupt the bulk job"
    counts = {key: done["result"][key] for key in ("matched", "changed", "skipped", "failed")}
    assert counts == {"matched": JOBS, "changed": JOBS, "skipped": 0, "failed": 0}
    assert api.http.get(f"/api/jobs/projects/{project}/stats").json()["total"] == 1  # itself
    assert_consistent(api.stack)
