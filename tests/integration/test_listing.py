"""Listing, filters, cursor pagination, statistics, cleanup, and search attributes that
answer Temporal's list queries the same way the API does."""

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, update

from pastools_jobs.db.models import Job
from tests.support.jobs import JobsApi, new_project
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def finished_jobs(api: JobsApi, project: str) -> tuple[list[str], str]:
    """Three completed exports and a failed import in a fresh project."""
    done = [api.submit("probe", project, items=1)["id"] for _ in range(3)]
    failed = api.submit_failing_import(project)["id"]
    for job_id in done:
        api.wait_for_status(job_id, "completed")
    api.wait_for_status(failed, "failed")
    return done, failed


def test_filters_cursor_pages_and_stats(api: JobsApi) -> None:
    project = new_project()
    done, failed = finished_jobs(api, project)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"project_id": project, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.http.get("/api/jobs", params=params).json()
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([*done, failed])
    assert len(seen) == len(set(seen)) == 4
    assert seen[0] == failed, "newest first"

    failed_only = api.http.get("/api/jobs", params={"project_id": project, "status": "failed"})
    assert [job["id"] for job in failed_only.json()["items"]] == [failed]
    exports = api.http.get(f"/api/jobs/projects/{project}", params={"status": "completed"})
    assert sorted(job["id"] for job in exports.json()["items"]) == sorted(done)
    by_type = api.http.get("/api/jobs", params={"project_id": project, "type": "import"})
    assert [job["id"] for job in by_type.json()["items"]] == [failed]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = api.http.get("/api/jobs", params={"project_id": project, "created_from": future})
    assert later.json()["items"] == []

    stats = api.http.get(f"/api/jobs/projects/{project}/stats").json()
    assert stats == {
        "total": 4,
        "by_status": {"queued": 0, "running": 0, "completed": 3, "failed": 1, "cancelled": 0},
        "by_type": {"probe": 3, "import": 1},
        "paused": 0,
    }
    overall = api.http.get("/api/jobs/stats").json()
    assert overall["total"] >= 4
    assert overall["total"] == sum(overall["by_status"].values())


def temporal_ids(api: JobsApi, query: str) -> set[str]:
    """The ids `temporal workflow list --query` answers with."""
    listed = api.stack.temporal.cli("workflow", "list", "--query", query, "-o", "json")
    return {item["execution"]["workflowId"] for item in json.loads(listed.stdout or "[]")}


def test_search_attributes_answer_like_the_api(api: JobsApi) -> None:
    project = new_project()
    done, failed = finished_jobs(api, project)
    for job_type, status, expected in (
        ("import", "failed", {failed}),
        ("probe", "completed", set(done)),
    ):
        query = f"JobType='{job_type}' AND JobStatus='{status}' AND ProjectId='{project}'"
        from_api = api.http.get(
            "/api/jobs", params={"project_id": project, "type": job_type, "status": status}
        ).json()["items"]
        assert {job["id"] for job in from_api} == expected
        wait_for(
            functools.partial(lambda q, e: temporal_ids(api, q) == e, query, expected),
            what=f"visibility: {query}",
        )


def test_a_job_shows_running_in_its_search_attributes_before_any_progress_step(
    api: JobsApi,
) -> None:
    """The API starts a job as `queued` in JobStatus too; its work says `running` one
    heartbeat interval in, long before this job's first 10 % step (10 s)."""
    project = new_project()
    job_id = api.submit("probe", project, items=1000, item_ms=100)["id"]
    queued = f"JobStatus='queued' AND ProjectId='{project}'"
    running = f"JobStatus='running' AND ProjectId='{project}'"
    wait_for(lambda: temporal_ids(api, running) == {job_id}, timeout=8, what=running)
    assert temporal_ids(api, queued) == set()
    assert api.get(job_id)["status"] == "running"
    assert api.get(job_id)["progress"]["percent"] < 10

    api.http.post(f"/api/jobs/{job_id}/cancel")
    api.wait_for_status(job_id, "cancelled")
    cancelled = f"JobStatus='cancelled' AND ProjectId='{project}'"
    wait_for(lambda: temporal_ids(api, cancelled) == {job_id}, what=cancelled)


def test_cleanup_deletes_old_finished_jobs_only(api: JobsApi) -> None:
    project = new_project()
    old = api.submit("probe", project, items=1)["id"]
    api.wait_for_status(old, "completed")
    running = api.submit("probe", project, items=1000, item_ms=50)["id"]
    api.wait_running(running)
    engine = create_engine(api.stack.database_url)
    with engine.begin() as connection:
        long_ago = datetime.now(UTC) - timedelta(days=40)
        connection.execute(update(Job).where(Job.id == old).values(completed_at=long_ago))
    engine.dispose()

    response = api.http.post("/api/jobs/cleanup", json={"older_than_days": 30})
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] >= 1
    assert api.http.get(f"/api/jobs/{old}").status_code == 404
    assert api.get(running)["status"] == "running"
    api.http.post(f"/api/jobs/{running}/cancel")
    api.wait_for_status(running, "cancelled")

    schedule = api.stack.temporal.cli(
        "schedule", "describe", "--schedule-id", f"{api.stack.task_queue}-cleanup", "-o", "json"
    )
    assert "CleanupFinishedJobs" in schedule.stdout


def test_job_counts_equal_the_jobs_table_after_a_mixed_workload(api: JobsApi) -> None:
    project = new_project()
    done, failed = finished_jobs(api, project)
    cancelled = api.submit("probe", project, items=1000, item_ms=50)["id"]
    api.wait_running(cancelled)
    assert api.http.post(f"/api/jobs/{cancelled}/cancel").status_code == 202
    api.wait_for_status(cancelled, "cancelled")
    for job_id in (failed, cancelled):
        assert api.http.post(f"/api/jobs/{job_id}/retry").status_code == 200
    api.wait_for_job(failed, lambda job: job["status"] == "failed" and job["attempt"] == 2)
    api.wait_running(cancelled)
    assert api.http.post(f"/api/jobs/{cancelled}/cancel").status_code == 202
    api.wait_for_status(cancelled, "cancelled")
    engine = create_engine(api.stack.database_url)
    with engine.begin() as connection:
        long_ago = datetime.now(UTC) - timedelta(days=40)
        connection.execute(update(Job).where(Job.id == done[0]).values(completed_at=long_ago))
    engine.dispose()
    assert api.http.post("/api/jobs/cleanup", json={"older_than_days": 30}).status_code == 200

    assert api.count_drift() == []
    stats = api.http.get(f"/api/jobs/projects/{project}/stats").json()
    assert stats["by_status"] == {
        "queued": 0,
        "running": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 1,
    }
    assert stats["by_type"] == {"probe": 3, "import": 1}


def test_the_list_finds_jobs_by_parameter_and_error_type(api: JobsApi) -> None:
    """What a user types in the URL: `param.<name>=` with the other filters, and a name that
    is no parameter's refused as problem details."""
    project = new_project()
    done, failed = finished_jobs(api, project)
    two = api.submit("probe", project, items=2)["id"]
    api.wait_for_status(two, "completed")

    def ids(**query: Any) -> set[str]:
        response = api.http.get("/api/jobs", params={"project_id": project, **query})
        assert response.status_code == 200, response.text
        return {job["id"] for job in response.json()["items"]}

    assert ids(**{"param.items": "2"}) == {two}
    assert ids(**{"param.items": "1", "status": "completed"}) == set(done)
    failed_job = api.http.get(f"/api/jobs/{failed}").json()
    assert ids(**{"param.source": failed_job["params"]["source"][:12] + "*"}) == {failed}
    assert ids(error_type="SourceNotFound") == set()
    assert ids(error_type=failed_job["error"]["type"]) == {failed}

    refused = api.http.get("/api/jobs", params={"param.a.b": "x"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "'param.a.b' is not a parameter filter" in refused.json()["detail"]
