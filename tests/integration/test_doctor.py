"""`pastools doctor` finds each kind of difference, made for real, and `--fix` repairs it.

The stack runs without the mirror, so that what a test breaks stays broken until the
doctor sees it.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, JobAttempt
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


def rerun_lost_to_the_table(api: JobsApi, project: str) -> str:
    """A cancelled job run again from the `temporal` CLI, whose new run the table never
    recorded: the row is put back as it was before the rerun (as if the database had
    been down while the run was recorded)."""
    job_id = api.submit("probe", project, items=1000, item_ms=50)["id"]
    api.wait_running(job_id)
    assert api.http.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    api.wait_for_status(job_id, "cancelled")
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
