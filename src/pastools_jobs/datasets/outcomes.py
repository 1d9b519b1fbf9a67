"""Each data test's outcomes across test runs: written when a run has judged its tests,
read newest first by the test-history route (no HTTP here)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, tuple_
from sqlalchemy.orm import Session

from pastools_jobs.datasets.projects import get_project
from pastools_jobs.datasets.testsuite import Verdict
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import DataTestOutcome, Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import decode_cursor, encode_cursor


def record_outcomes(
    session: Session, project_id: str, job_id: str, ran_at: datetime, verdicts: Sequence[Verdict]
) -> None:
    """Replaces whatever the job recorded before: an activity retried after writing, or a
    retried job, leaves one outcome per test and job."""
    session.execute(delete(DataTestOutcome).where(DataTestOutcome.job_id == job_id))
    session.add_all(
        DataTestOutcome(
            job_id=job_id,
            test_name=verdict.name,
            project_id=project_id,
            kind=verdict.kind,
            ran_at=ran_at,
            status=verdict.status,
            failing=verdict.failing,
            total=verdict.total if verdict.total is not None else 0,
            severity=verdict.severity,
            warn_if=verdict.warn_if,
            error_if=verdict.error_if,
        )
        for verdict in verdicts
    )
    session.flush()


@dataclass(frozen=True)
class OutcomePage:
    outcomes: list[DataTestOutcome]
    next_cursor: str | None


def outcome_page(
    session: Session, project_id: str, test_name: str, limit: int, cursor: str | None
) -> OutcomePage:
    """Newest first; the cursor names the last outcome seen. An unknown project raises
    ProjectNotFound; a test never run has no outcomes.

    Only runs whose job completed count (or whose job the cleanup has since removed): a run
    records its outcomes before its job's end is recorded, and a job that then failed, was
    cancelled or is being retried did not produce them as a result."""
    get_project(session, project_id)
    query = (
        select(DataTestOutcome)
        .outerjoin(Job, Job.id == DataTestOutcome.job_id)
        .where(
            DataTestOutcome.project_id == project_id,
            DataTestOutcome.test_name == test_name,
            or_(Job.id.is_(None), Job.status == JobStatus.COMPLETED),
        )
    )
    if cursor is not None:
        ran_at, job_id = decode_cursor(cursor)
        query = query.where(
            tuple_(DataTestOutcome.ran_at, DataTestOutcome.job_id) < tuple_(ran_at, job_id)
        )
    newest = query.order_by(DataTestOutcome.ran_at.desc(), DataTestOutcome.job_id.desc())
    outcomes = list(session.scalars(newest.limit(limit + 1)))
    if len(outcomes) <= limit:
        return OutcomePage(outcomes, None)
    last = outcomes[limit - 1]
    return OutcomePage(outcomes[:limit], encode_cursor(last.ran_at, last.job_id))


class DataTestHistory:
    """A test's history, read in one transaction off the event loop."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, project_id: str, test_name: str, limit: int, cursor: str | None
    ) -> OutcomePage:
        return await self._db.run(
            lambda session: outcome_page(session, project_id, test_name, limit, cursor)
        )
