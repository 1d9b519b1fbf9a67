"""`pastools doctor` finds each kind of difference, made for real, and `--fix` repairs it.

The stack runs without the mirror, so that what a test breaks stays broken until the
doctor sees it.
"""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, JobAttempt
from pastools_jobs.mirror.apply import archive_attempt
from pastools_jobs.mirror.reconciler import Reconciler
from pastools_jobs.temporal import JobLauncher
from tests.conftest import BACKENDS, backend_stack
from tests.support.doctor import DoctorRun, doctor_command, run_doctor
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack, TemporalServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=BACKENDS)
def unmirrored(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobsApi]:
    stack = backend_stack(
        request, temporal, tmp_path_factory, "doctor", {"PASTOOLS_MIRROR_ENABLED": "false"}
    )
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


def hand_made_row(stack: Stack, status: str, run_id: str | None, age: timedelta) -> str:
    """A row written straight into the table, as a crash or a hand edit leaves one."""
    job_id = f"doctor-{uuid.uuid4().hex[:12]}"
    when = datetime.now(UTC) - age
    db = Database(stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        session.add(
            Job(
                id=job_id,
                type="probe",
                project_id=new_project(),
                status=status,
                params={"items": 1},
                attempt=1,
                run_id=run_id,
                progress_done=0,
                created_at=when,
                updated_at=when,
            )
        )
    db.dispose()
    return job_id


def cancelled_job(api: JobsApi, project: str) -> str:
    """A job cancelled while it ran."""
    job_id = api.submit("probe", project, items=1000, item_ms=50)["id"]
    api.wait_running(job_id)
    assert api.http.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    api.wait_for_status(job_id, "cancelled")
    return job_id


def rerun_lost_to_the_table(api: JobsApi, project: str) -> str:
    """A cancelled job run again from the `temporal` CLI, whose new run the table never
    recorded: the row is put back as it was before the rerun (as if the database had
    been down while the run was recorded)."""
    job_id = cancelled_job(api, project)
    db = Database(api.stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        before = {
            column: getattr(session.get(Job, job_id), column)
            for column in ("run_id", "status", "attempt", "completed_at", "error_type")
        }
    api.stack.temporal.cli(
        "workflow",
        "start",
        "--type",
        "ProbeJob",
        "--task-queue",
        api.stack.task_queue,
        "--workflow-id",
        job_id,
        "--input",
        f'{{"project_id": "{project}", "params": {{}}}}',
    )
    api.wait_for_status(job_id, "completed")
    with db.transaction() as session:
        session.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id))
        session.execute(update(Job).where(Job.id == job_id).values(result=None, **before))
    db.dispose()
    return job_id


def edit_rows(stack: Stack, statement: object) -> None:
    db = Database(stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        session.execute(statement)  # type: ignore[call-overload]
    db.dispose()


def test_doctor_reports_every_kind_of_difference_and_fix_repairs_them(
    unmirrored: JobsApi,
) -> None:
    api, stack = unmirrored, unmirrored.stack
    project = new_project()
    deleted = api.submit("probe", project, items=2)["id"]
    edited = api.submit("probe", project, items=2)["id"]
    terminated = api.submit("probe", project, items=1000, item_ms=50)["id"]
    api.wait_for_status(deleted, "completed")
    expected_result = api.wait_for_status(edited, "completed")["result"]
    api.wait_running(terminated)
    stack.temporal.cli("workflow", "terminate", "-w", terminated, "--reason", "doctor test")
    edit_rows(stack, delete(Job).where(Job.id == deleted))
    edit_rows(stack, update(Job).where(Job.id == edited).values(status="failed", result=None))
    orphan = hand_made_row(stack, "running", uuid.uuid4().hex, timedelta(minutes=5))
    never_started = hand_made_row(stack, "queued", None, timedelta(minutes=5))
    rerun = rerun_lost_to_the_table(api, project)
    expected = {
        rerun: "run-mismatch",
        deleted: "missing-row",
        edited: "wrong-status",
        terminated: "wrong-status",
        orphan: "orphan-row",
        never_started: "not-started",
    }

    # The terminated job's row was written a moment ago: the doctor waits for it to settle.
    # Rows written behind the platform's back also leave their projects' statistics wrong.
    drifted = {project, api.get(orphan)["project_id"], api.get(never_started)["project_id"]}

    def reports_all() -> DoctorRun | None:
        run = run_doctor(stack)
        return run if (run.kinds(), run.drifted_projects()) == (expected, drifted) else None

    found = wait_for(
        reports_all,
        timeout=30,
        interval=1,
        what="the doctor to report each difference",
    )
    assert found.exit_code == 1
    text = doctor_command(stack).stdout
    print(text)
    lines = text.splitlines()
    assert lines[0].startswith(f"{len(found.report['differences'])} differences")
    for job_id, kind in expected.items():
        assert any(line.startswith(kind) and job_id in line for line in lines[1:]), text
    for drifted_project in drifted:
        assert any(
            line.startswith("count-drift") and f"project {drifted_project}" in line
            for line in lines[1:]
        ), text

    fixed = run_doctor(stack, "--fix")
    unrepaired = [d for d in fixed.report["differences"] if not d["repaired"]]
    assert (fixed.exit_code, unrepaired) == (0, []), fixed.report
    assert all(d["repaired"] for d in fixed.report["differences"]), fixed.report

    repairs = api.http.get("/api/audit", params={"action": "doctor.repair", "limit": 500})
    recorded = {
        entry["job_id"]: entry["details"]["difference"]
        for entry in repairs.json()["items"]
        if entry["job_id"] in expected
    }
    assert recorded == expected, "each repair is in the audit trail"
    assert {e["actor"]["kind"] for e in repairs.json()["items"]} == {"doctor"}
    assert {e["actor"]["channel"] for e in repairs.json()["items"]} == {"cli"}

    assert api.get(deleted)["status"] == "completed"
    assert api.get(edited)["result"] == expected_result
    assert api.get(terminated)["error"]["type"] == "Terminated"
    assert api.get(orphan)["error"]["type"] == "WorkflowMissing"
    assert api.wait_for_status(never_started, "completed")["result"]["items"] == 1
    adopted = api.get(rerun)
    assert adopted["status"] == "completed"
    assert [a["status"] for a in adopted["attempts"]] == ["cancelled", "completed"]
    again = run_doctor(stack)
    assert (again.exit_code, again.report["differences"]) == (0, [])


def test_a_finished_row_is_given_time_to_settle_and_never_moved_back(
    unmirrored: JobsApi,
) -> None:
    """The row of a job that has recorded its end while its workflow has not closed yet
    (the normal instant between the two) is no difference; one that stays so is reported,
    and `--fix` does not move it back to running: it follows the run once the run closes."""
    api, stack = unmirrored, unmirrored.stack
    job_id = api.submit("probe", new_project(), items=1000, item_ms=50)["id"]
    api.wait_running(job_id)
    just_now = datetime.now(UTC)
    finished = {"status": "completed", "completed_at": just_now, "updated_at": just_now}
    edit_rows(stack, update(Job).where(Job.id == job_id).values(**finished))

    assert job_id not in run_doctor(stack).kinds()

    long_ago = just_now - timedelta(minutes=1)
    edit_rows(stack, update(Job).where(Job.id == job_id).values(updated_at=long_ago))
    fixed = run_doctor(stack, "--fix")
    assert fixed.kinds()[job_id] == "wrong-status"
    assert api.get(job_id)["status"] == "completed"

    stack.temporal.cli("workflow", "terminate", "-w", job_id, "--reason", "doctor test")

    def repaired_after_close() -> dict[str, Any] | None:
        run_doctor(stack, "--fix")
        error: dict[str, Any] | None = api.get(job_id)["error"]
        return error

    error = wait_for(repaired_after_close, timeout=30, interval=1, what="the row to follow")
    assert error["type"] == "Terminated"
    assert run_doctor(stack).report["differences"] == []


RESTORED = (
    "run_id", "attempt", "started_at", "completed_at", "cancel_requested_at",
    "progress_done", "progress_total", "progress_message", "checkpoint",
)  # fmt: skip


def completed_though_cancelled(api: JobsApi, project: str, *, rerun: bool) -> str:
    """A cancelled job whose row says completed, with a result (what a cancel that raced the
    work's end left in an earlier version), written a minute ago. `rerun`: and run again
    from the `temporal` CLI, a new run the table never recorded (the database was down)."""
    job_id = cancelled_job(api, project)
    db = Database(api.stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        before = {column: getattr(session.get(Job, job_id), column) for column in RESTORED}
    db.dispose()
    if rerun:
        api.stack.temporal.cli(
            "workflow", "start", "--type", "ProbeJob", "--task-queue", api.stack.task_queue,
            "--workflow-id", job_id, "--input", f'{{"project_id": "{project}", "params": {{}}}}',
        )  # fmt: skip
        api.wait_for_job(job_id, lambda job: job["attempt"] == 2 and job["status"] == "completed")
        edit_rows(api.stack, delete(JobAttempt).where(JobAttempt.job_id == job_id))
    completed = {
        "status": "completed",
        "result": {"items": 1000, "resumed_from": 0},
        "error_type": None,
        "error_message": None,
        "error_details": None,
        "updated_at": datetime.now(UTC) - timedelta(minutes=1),
    }
    edit_rows(api.stack, update(Job).where(Job.id == job_id).values(**before, **completed))
    return job_id


def reconcile_once(stack: Stack) -> None:
    """One slow pass of the API's reconciler (every workflow started or closed lately)."""

    async def slow_pass() -> None:
        client = await Client.connect(
            stack.temporal.address, data_converter=pydantic_data_converter
        )
        db = Database(stack.database_url, application_name="pastools-tests")
        try:
            await Reconciler(db, JobLauncher(client, stack.task_queue), 1).slow_pass()
        finally:
            db.dispose()

    asyncio.run(slow_pass())


def outcome(api: JobsApi, job_id: str) -> tuple[Any, ...]:
    job = api.get(job_id)
    error = job["error"]["type"] if job["error"] else None
    return job["status"], error, job["result"], [a["status"] for a in job["attempts"]]


def test_the_doctor_and_the_reconciler_repair_a_finished_row_alike(unmirrored: JobsApi) -> None:
    """A completed row whose closed run says Canceled follows the run, whichever repairs it,
    and so does the attempt a newer run archives (both used to skip the row's own run once
    the row had finished, and so archived the attempt as completed)."""
    api, stack = unmirrored, unmirrored.stack
    project = new_project()
    same_run = ("cancelled", "Cancelled", None, ["cancelled"])
    newer_run = ("completed", None, {"items": 100, "resumed_from": 0}, ["cancelled", "completed"])
    # Each repairs every difference it finds: the reconciler's rows are checked before the
    # doctor runs. (The hand edits leave count-drift too, which only the doctor repairs.)
    by_reconciler = [completed_though_cancelled(api, project, rerun=r) for r in (False, True)]
    reconcile_once(stack)
    assert [outcome(api, job_id) for job_id in by_reconciler] == [same_run, newer_run]

    by_doctor = [completed_though_cancelled(api, project, rerun=r) for r in (False, True)]
    found = run_doctor(stack, "--fix")
    assert [found.kinds()[job_id] for job_id in by_doctor] == ["wrong-status", "run-mismatch"]
    assert [outcome(api, job_id) for job_id in by_doctor] == [same_run, newer_run]
    again = run_doctor(stack)
    assert (again.exit_code, again.report["differences"]) == (0, [])


def retry_never_started(api: JobsApi, project: str) -> str:
    """A cancelled job put back in the queue for its next attempt, whose new run was never
    started: its only workflow is the archived attempt's."""
    job_id = cancelled_job(api, project)
    db = Database(api.stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        row = session.get(Job, job_id)
        assert row is not None
        archive_attempt(session, row)
        row.params = {"items": 3}  # a quick next attempt
        row.updated_at = datetime.now(UTC) - timedelta(minutes=5)
    db.dispose()
    return job_id


def test_the_doctor_and_the_reconciler_both_start_a_retry_that_never_started(
    unmirrored: JobsApi,
) -> None:
    """The doctor started such a job (not-started); the reconciler, finding a workflow under
    its id, applied that closed run's end (a no-op) and left the row queued for good."""
    api, stack = unmirrored, unmirrored.stack
    project = new_project()
    retried = ("completed", None, {"items": 3, "resumed_from": 0}, ["cancelled", "completed"])
    by_reconciler = retry_never_started(api, project)
    reconcile_once(stack)
    api.wait_for_status(by_reconciler, "completed")
    assert outcome(api, by_reconciler) == retried

    by_doctor = retry_never_started(api, project)
    found = run_doctor(stack, "--fix")
    assert found.kinds()[by_doctor] == "not-started"
    api.wait_for_status(by_doctor, "completed")
    assert outcome(api, by_doctor) == retried
