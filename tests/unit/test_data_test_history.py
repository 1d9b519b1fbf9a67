"""A data test's history (`datasets/outcomes.py`) on each database: only runs whose job
completed count, and a cursor or a test name nobody could have made is refused, not a
crash."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from pastools_jobs.clock import utcnow
from pastools_jobs.counts import count_change, record_counts
from pastools_jobs.datasets import testsuite
from pastools_jobs.datasets.outcomes import outcome_page, record_outcomes
from pastools_jobs.datasets.testsuite import Verdict
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, Project
from pastools_jobs.domain import InvalidJobInput, JobStatus
from pastools_jobs.repository import delete_finished
from tests.support.rows import submitted


def new_project(db: Database) -> str:
    project = f"p-{uuid.uuid4().hex[:10]}"
    with db.transaction() as session:
        session.add(Project(id=project, created_at=utcnow(), updated_at=utcnow()))
    return project


def verdict(failing: int) -> Verdict:
    status = "error" if failing else "pass"
    return Verdict(
        name="t", kind="not_null", passed=not failing, status=status, failing=failing,
        total=10, examples=[], message="",
    )  # fmt: skip


def test_the_history_shows_the_runs_whose_job_completed_or_is_gone(db: Database) -> None:
    """A run records its outcomes before its job's end is recorded: a job that then failed,
    was cancelled or is being retried has no outcome yet; one since cleaned up keeps it."""
    project = new_project(db)
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RUNNING]
    jobs = [submitted(db, project, "test_run") for _ in statuses]
    gone = f"{project}-cleaned-up"
    start = utcnow()
    with db.transaction() as session:
        for n, (job_id, status) in enumerate(zip(jobs, statuses, strict=True)):
            session.execute(update(Job).where(Job.id == job_id).values(status=status))
            moved = count_change(project, "test_run", JobStatus.QUEUED, status)
            record_counts(session.connection(), moved)  # the counts stay true for other tests
            record_outcomes(session, project, job_id, start + timedelta(seconds=n), [verdict(n)])
        record_outcomes(session, project, gone, start - timedelta(days=1), [verdict(9)])

    with db.transaction() as session:
        page = outcome_page(session, project, "t", 10, None)

    assert [(o.job_id, o.failing) for o in page.outcomes] == [(jobs[0], 0), (gone, 9)]

    with db.transaction() as session:
        assert len(delete_finished(session, jobs)) == 3  # as the cleanup and bulk delete do
        after = outcome_page(session, project, "t", 10, None)
    assert [o.job_id for o in after.outcomes] == [jobs[0], gone], "not the failed or cancelled"


def cursor(ran_at: str, job_id: str) -> str:
    raw = json.dumps([ran_at, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("tampered", "refused"),
    [
        (cursor("2026-01-01T00:00:00+00:00", "a\u0000b"), True),
        ("not base64 !", True),
        (cursor("0001-01-01T00:00:00+05:00", "j"), False),  # before any run
        (cursor("9999-12-31T23:59:59-05:00", "j"), False),
    ],
)
def test_a_tampered_cursor_is_refused_or_finds_nothing(
    db: Database, tampered: str, refused: bool
) -> None:
    """Refused as any cursor this API did not return (a 422), never a database error."""
    project = new_project(db)
    with db.transaction() as session:
        if refused:
            with pytest.raises(InvalidJobInput):
                outcome_page(session, project, "t", 10, tampered)
        else:
            assert outcome_page(session, project, "t", 10, tampered).outcomes == []


def test_a_test_name_with_a_nul_is_refused_when_defined() -> None:
    """PostgreSQL's text holds no NUL: such a test would fail every run recording its
    outcome."""
    test = {"kind": "unique", "name": "a\u0000b", "field": "f"}
    with pytest.raises(ValidationError, match="name"):
        testsuite.TestSuite.model_validate({"tests": [test]})
