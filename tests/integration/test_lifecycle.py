"""A job's life over HTTP, on each database backend, against real Temporal."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import add_job
from tests.support.jobs import JobsApi, new_project
from tests.support.rows import start_lost
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_submitted_job_runs_to_completed_with_progress_rising_to_100(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=30, item_ms=100)
    assert job["status"] == "queued"
    assert job["progress"]["percent"] == 0

    seen: list[int] = []

    def finished() -> dict | None:
        current = api.get(job["id"])
        seen.append(current["progress"]["percent"])
        return current if current["status"] == "completed" else None

    done = wait_for(finished, timeout=30, what="completion")
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert any(0 < percent < 100 for percent in seen), f"no progress seen mid-run: {seen}"
    assert done["progress"] == {
        "done": 30,
        "total": 30,
        "percent": 100,
        "message": "Done",
    }
    assert done["result"] == {"items": 30, "resumed_from": 0}
    assert done["started_at"] and done["completed_at"] and done["duration_seconds"] > 0
    assert done["created_at"] <= done["started_at"] <= done["completed_at"]
    assert done["error"] is None


def test_job_whose_first_report_is_slow_shows_running_before_it(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1, item_ms=3000)

    running = api.wait_for_status(job["id"], "running", "completed")

    assert running["status"] == "running", "running only once its first report came"
    assert running["progress"]["done"] == 0
    assert running["created_at"] <= running["started_at"]
    done = api.wait_for_status(job["id"], "completed")
    assert done["started_at"] == running["started_at"]


def test_running_job_cancelled_over_http_stops_its_activity(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(job["id"], min_done=3)

    response = api.http.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["cancel_requested"] is True

    cancelled = api.wait_for_status(job["id"], "cancelled")
    assert cancelled["completed_at"] is not None
    assert cancelled["error"]["type"] == "Cancelled"
    assert 3 <= cancelled["progress"]["done"] < 1000
    history = api.stack.temporal.cli("workflow", "show", "-w", job["id"], "-o", "json").stdout
    assert "EVENT_TYPE_ACTIVITY_TASK_CANCELED" in history, "the activity never acknowledged"

    again = api.http.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


def test_job_cancelled_from_the_temporal_cli_shows_cancelled(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(job["id"])

    api.stack.temporal.cli("workflow", "cancel", "-w", job["id"])

    cancelled = api.wait_for_status(job["id"], "cancelled")
    assert cancelled["completed_at"] is not None


def test_job_terminated_from_the_temporal_cli_shows_failed_with_the_reason(
    api: JobsApi,
) -> None:
    job = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(job["id"])

    api.stack.temporal.cli(
        "workflow", "terminate", "-w", job["id"], "--reason", "stuck on a bad disk"
    )

    failed = api.wait_for_status(job["id"], "failed", timeout=15)
    assert failed["error"]["type"] == "Terminated"
    assert "stuck on a bad disk" in failed["error"]["message"]
    assert failed["completed_at"] is not None


def test_failed_job_retried_over_http_completes_and_keeps_the_failed_attempt(
    api: JobsApi,
) -> None:
    project = api.create_project()
    source = api.write_import(project, "retried.csv", b"")
    job = api.submit("import", project, source=source)

    failed = api.wait_for_status(job["id"], "failed")
    assert failed["error"]["type"] == "SourceUnusable"
    assert source in failed["error"]["message"]
    assert failed["error"]["details"] == {"source": source}
    attempts = api.activity_attempts(job["id"])
    assert attempts == [1, 1], f"its plan and its import, once each: attempts {attempts}"

    api.write_import(project, source, "name\na\nb\nc\n")

    response = api.http.post(f"/api/jobs/{job['id']}/retry")
    assert response.status_code == 200, response.text
    retried = response.json()
    assert retried["attempt"] == 2
    assert retried["error"] is None
    if retried["status"] == "queued":  # else its new run's work was quicker than the answer
        assert retried["progress"]["done"] == 0

    done = api.wait_for_status(job["id"], "completed")
    assert done["result"]["imported"] == 3
    first, second = done["attempts"]
    assert (first["attempt"], first["status"]) == (1, "failed")
    assert first["error"]["type"] == "SourceUnusable"
    assert first["completed_at"] is not None
    assert (second["attempt"], second["status"]) == (2, "completed")
    assert first["run_id"] != second["run_id"]

    assert api.http.post(f"/api/jobs/{job['id']}/retry").status_code == 409


def test_worker_killed_mid_job_resumes_from_its_checkpoint(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=40, item_ms=150)
    api.wait_running(job["id"], min_done=10)

    api.stack.kill_worker()
    try:
        stalled = api.get(job["id"])
        assert stalled["status"] == "running"
    finally:
        api.stack.start_worker()

    done = api.wait_for_status(job["id"], "completed", timeout=60)
    assert done["result"]["resumed_from"] > 0, "the retried activity started from scratch"
    assert done["progress"]["done"] == 40


def start_probe_from_cli(api: JobsApi, job_id: str, request: dict, *options: str) -> None:
    """`temporal workflow start`, as a user would type it, for a probe job."""
    api.stack.temporal.cli(
        "workflow", "start", "--type", "ProbeJob", "--task-queue", api.stack.task_queue,
        "--workflow-id", job_id, "--input", json.dumps(request), *options,
    )  # fmt: skip


def test_workflow_started_from_the_cli_appears_in_the_table(api: JobsApi) -> None:
    project = new_project()
    job_id = f"cli-{project}"
    start_probe_from_cli(api, job_id, {"project_id": project, "params": {"items": 3}})

    job = wait_for(
        lambda: api.http.get(f"/api/jobs/{job_id}").status_code == 200,
        what="the CLI-started job's row",
    )
    assert job
    done = api.wait_for_status(job_id, "completed")
    assert (done["type"], done["project_id"]) == ("probe", project)
    assert done["params"] == {"items": 3}


def test_job_past_its_time_limit_shows_failed_as_timed_out(api: JobsApi) -> None:
    response = api.http.post(
        "/api/jobs",
        json={
            "type": "probe",
            "project_id": new_project(),
            "params": {"items": 1000, "item_ms": 50},
            "timeout_seconds": 2,
        },
    )
    assert response.status_code == 201, response.text

    failed = api.wait_for_status(response.json()["id"], "failed", timeout=20)
    assert failed["error"]["type"] == "TimedOut"


def test_failed_job_run_again_from_the_cli_becomes_its_next_attempt(api: JobsApi) -> None:
    project = new_project()
    job = api.submit("probe", project, items=1000, item_ms=50)
    api.wait_running(job["id"])
    api.stack.temporal.cli("workflow", "terminate", "-w", job["id"], "--reason", "first try")
    api.wait_for_status(job["id"], "failed")

    start_probe_from_cli(
        api,
        job["id"],
        {"project_id": project, "params": {"items": 2}},
        "--id-reuse-policy",
        "AllowDuplicateFailedOnly",
    )

    done = api.wait_for_status(job["id"], "completed")
    assert done["attempt"] == 2
    first, second = done["attempts"]
    assert (first["status"], first["error"]["type"]) == ("failed", "Terminated")
    assert second["status"] == "completed"
    assert done["result"]["items"] == 2
    assert done["params"] == {"items": 2}, "the row shows the parameters of an older attempt"


def test_row_whose_workflow_was_never_started_is_started_by_the_mirror(api: JobsApi) -> None:
    """What a crash between the submit's commit and its start_workflow leaves behind."""
    job_id = uuid.uuid4().hex
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    engine = create_engine(api.stack.database_url)
    with Session(engine) as session, session.begin():
        add_job(
            session,
            Job(
                id=job_id,
                type="probe",
                project_id=new_project(),
                status=JobStatus.QUEUED,
                params={"items": 2},
                attempt=1,
                progress_done=0,
                created_at=long_ago,
                updated_at=long_ago,
            ),
        )
    engine.dispose()

    done = api.wait_for_status(job_id, "completed")
    assert done["result"] == {"items": 2, "resumed_from": 0}
    assert done["attempts"][0]["run_id"]


def test_cancel_of_a_job_whose_workflow_was_never_started_cancels_it(api: JobsApi) -> None:
    """The API died between the commit and the start: the cancel must not answer that the
    job completed, nor let the mirror start it later."""
    db = Database(api.stack.database_url, application_name="pastools-tests")
    job_id = start_lost(db, new_project(), params={"items": 5, "item_ms": 100})
    db.dispose()

    response = api.http.post(f"/api/jobs/{job_id}/cancel")

    assert response.status_code == 202, response.text
    assert response.json()["cancel_requested"]
    cancelled = api.wait_for_status(job_id, "cancelled")
    assert (cancelled["result"], cancelled["error"]["type"]) == (None, "Cancelled")
    assert api.temporal_status(job_id) == "CANCELED"
