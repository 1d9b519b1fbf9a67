"""Pause and resume through the REST API and the `temporal` CLI, on each database: a
paused job shows as paused in the job, the list filter, the statistics and its
JobPaused search attribute, goes on from its checkpoint when resumed, and is still
cancellable; a paused project holds its new and queued jobs, its schedules' runs too."""

import json
from typing import Any

import httpx
import pytest

from tests.integration.test_audit import audit, token_client
from tests.integration.test_schedules import create as create_schedule
from tests.integration.test_schedules import runs
from tests.support.doctor import run_doctor
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack

pytestmark = pytest.mark.integration

SLOW = {"items": 60, "item_ms": 100}
"""Six seconds of work: long enough to pause it midway."""


def post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code in (200, 201, 202), response.text
    answer: dict[str, Any] = response.json()
    return answer


def paused(api: JobsApi, job_id: str) -> dict[str, Any]:
    return api.wait_for_job(job_id, lambda job: job["paused"], what="paused")


def found_paused(stack: Stack, job_id: str, paused: bool) -> bool:
    """Whether Temporal's visibility finds the job by its JobPaused search attribute, as
    a search in the Web UI or `temporal workflow list --query` does."""
    query = f"WorkflowId = '{job_id}' AND JobPaused = {str(paused).lower()}"
    listed = stack.temporal.cli("workflow", "list", "--query", query, "-o", "json")
    return len(json.loads(listed.stdout or "[]")) == 1


def listed(api: JobsApi, project: str, **filters: Any) -> list[str]:
    response = api.http.get("/api/jobs", params={"project_id": project, **filters})
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["items"]]


def test_a_paused_job_shows_everywhere_and_resumes_from_its_checkpoint(
    api: JobsApi, stack: Stack
) -> None:
    project = new_project()
    job = api.submit("probe", project, **SLOW)
    api.wait_running(job["id"], min_done=10)

    accepted = post(api.http, f"/api/jobs/{job['id']}/pause", {"reason": "maintenance"})
    assert accepted["status"] == "running"
    stopped = paused(api, job["id"])

    assert stopped["status"] == "running", "a paused job keeps its status"
    assert stopped["paused_at"] is not None
    assert 10 <= stopped["progress"]["done"] < SLOW["items"]
    assert listed(api, project, paused="true") == [job["id"]]
    assert listed(api, project, paused="false") == []
    stats = api.http.get(f"/api/jobs/projects/{project}/stats").json()
    assert stats["paused"] == 1 and stats["by_status"]["running"] == 1
    api.wait_for_job(job["id"], lambda _: found_paused(stack, job["id"], True), what="JobPaused")
    assert job["id"] not in run_doctor(stack).kinds(), "the doctor finds fault with a pause"

    post(api.http, f"/api/jobs/{job['id']}/resume")
    done = api.wait_for_status(job["id"], "completed")

    assert done["paused"] is False
    assert done["result"]["resumed_from"] >= stopped["progress"]["done"] - 1
    api.wait_for_job(job["id"], lambda _: found_paused(stack, job["id"], False), what="JobPaused")
    actions = [entry["action"] for entry in audit(api.http, job_id=job["id"])]
    assert actions[:2] == ["job.resume", "job.pause"]
    pause_entry = next(e for e in audit(api.http, job_id=job["id"]) if e["action"] == "job.pause")
    assert pause_entry["reason"] == "maintenance"


def test_a_job_paused_from_the_temporal_cli_is_paused_in_the_table_and_still_cancellable(
    api: JobsApi, stack: Stack
) -> None:
    job = api.submit("probe", new_project(), **SLOW)
    api.wait_running(job["id"], min_done=5)

    stack.temporal.cli("workflow", "signal", "-w", job["id"], "--name", "pause")
    paused(api, job["id"])
    post(api.http, f"/api/jobs/{job['id']}/cancel", {"reason": "not needed"})
    cancelled = api.wait_for_status(job["id"], "cancelled")

    assert cancelled["paused"] is False
    api.wait_for_job(job["id"], lambda _: found_paused(stack, job["id"], False), what="JobPaused")


def test_pause_and_resume_are_refused_for_a_finished_job_and_outside_ones_project(
    api: JobsApi, stack: Stack
) -> None:
    project = new_project()
    job = api.submit("probe", project, items=1, item_ms=1)
    api.wait_for_status(job["id"], "completed")

    refused = api.http.post(f"/api/jobs/{job['id']}/pause")
    assert refused.status_code == 409
    assert "completed" in refused.json()["detail"]
    with token_client(stack, "operator", new_project(), "elsewhere") as other:
        assert other.post(f"/api/jobs/{job['id']}/pause").status_code == 404
        assert other.post(f"/api/projects/{project}/pause").status_code == 404
    with token_client(stack, "viewer", project, "reader") as viewer:
        assert viewer.post(f"/api/jobs/{job['id']}/resume").status_code == 403
    with token_client(stack, "operator", project, "op") as operator:
        assert operator.post("/api/job-types/probe/pause").status_code == 403


def test_a_paused_project_holds_new_and_queued_jobs_until_it_is_resumed(
    api: JobsApi, stack: Stack
) -> None:
    project = new_project()
    running = api.submit("probe", project, **SLOW)
    api.wait_running(running["id"], min_done=1)

    held = post(api.http, f"/api/projects/{project}/pause", {"reason": "migration"})
    assert held["hold"]["running"] == "finish"
    api.wait_for_status(held["bulk_job"]["id"], "completed")
    newcomer = api.submit("probe", project, items=2, item_ms=1)

    assert paused(api, newcomer["id"])["status"] == "queued"
    holds = api.http.get("/api/holds").json()
    assert {"kind": "project", "target": project} in [
        {"kind": h["kind"], "target": h["target"]} for h in holds
    ]
    finished = api.wait_for_status(running["id"], "completed")
    assert finished["result"]["resumed_from"] == 0, "a running job was paused by 'finish'"
    assert api.get(newcomer["id"])["status"] == "queued"

    resumed = post(api.http, f"/api/projects/{project}/resume")
    assert resumed["hold"] is None
    assert api.wait_for_status(newcomer["id"], "completed")["paused"] is False
    assert project not in [h["target"] for h in api.http.get("/api/holds").json()]
    actions = {entry["action"] for entry in audit(api.http, project_id=project)}
    assert {"hold.place", "hold.lift", "job.resume"} <= actions


def test_a_project_paused_with_its_running_jobs_pauses_them_at_a_checkpoint(
    api: JobsApi,
) -> None:
    project = new_project()
    running = api.submit("probe", project, **SLOW)
    api.wait_running(running["id"], min_done=5)

    post(api.http, f"/api/projects/{project}/pause", {"running": "pause"})
    stopped = paused(api, running["id"])
    post(api.http, f"/api/projects/{project}/resume")
    done = api.wait_for_status(running["id"], "completed")

    assert done["result"]["resumed_from"] >= stopped["progress"]["done"] - 1 > 0


def test_a_scheduled_run_of_a_paused_project_waits_paused_and_has_a_fair_share(
    api: JobsApi,
) -> None:
    project = api.create_project()
    post(api.http, f"/api/projects/{project}/pause")
    create_schedule(api.http, project, "hourly")

    post(api.http, f"/api/projects/{project}/schedules/hourly/trigger")
    [run] = runs(api, project, "hourly", 1)
    held = paused(api, run["job_id"])
    post(api.http, f"/api/projects/{project}/resume")

    assert held["schedule_id"] == "hourly"
    assert api.wait_for_status(run["job_id"], "completed")["paused"] is False
    described = api.stack.temporal.cli("workflow", "describe", "-w", run["job_id"], "-o", "json")
    priority = json.loads(described.stdout)["workflowExecutionInfo"]["priority"]
    assert priority["fairnessKey"] == project, "a schedule's run gets no fair share"
