"""Job rows written straight to a database, as the platform's writers would."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from pastools_jobs.audit.trail import NO_AUTH
from pastools_jobs.counts import record_counts
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.job_catalog import PROBE
from pastools_jobs.repository import add_job, queued_job
from pastools_jobs.service import Submission, new_job

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
"""Finished jobs of these tests end here, so that a cleanup deletes only theirs."""


def submitted(db: Database, project: str, job_type: str = "probe") -> str:
    """A row as `JobService.submit` writes it: queued, no run id yet."""
    job_id = uuid.uuid4().hex
    with db.transaction() as session:
        add_job(session, queued_job(job_id, job_type, project, {}, LONG_AGO))
    return job_id


def start_lost(
    db: Database,
    project: str,
    *,
    params: dict[str, Any] | None = None,
    key: str | None = None,
    age: timedelta = timedelta(0),
    cancel_requested: bool = False,
) -> str:
    """The row a submission leaves when its API dies between the commit and the start: the
    platform's own row (`new_job`), committed `age` ago, whose workflow was never started.
    `cancel_requested`: as an earlier version left it when a cancel then failed."""
    checked = PROBE.params_model.model_validate(params or {}).model_dump(mode="json")
    job = new_job(Submission("probe", project, checked, NO_AUTH, idempotency_key=key))
    job.created_at = job.updated_at = datetime.now(UTC) - age
    if cancel_requested:
        job.cancel_requested_at = job.updated_at
    with db.transaction() as session:
        add_job(session, job)
    return job.id


def write_finished(url: str, project: str, count: int, status: str = "completed") -> None:
    """`count` finished probe jobs of `project`, with their counts, in one transaction."""
    rows: list[dict[str, Any]] = []
    for n in range(count):
        at = LONG_AGO + timedelta(seconds=n)
        rows.append(
            {
                "id": f"{project}-{n:05d}",
                "type": "probe",
                "project_id": project,
                "status": status,
                "params": {"items": n % 3},
                "attempt": 1,
                "progress_done": 1,
                "created_at": at,
                "started_at": at,
                "completed_at": at,
                "updated_at": at,
            }
        )
    db = Database(url, application_name="tests")
    try:
        with db.transaction() as session:
            session.execute(insert(Job), rows)
            change = Counter({(project, status, "probe"): count})
            record_counts(session.connection(), change)
    finally:
        db.dispose()
