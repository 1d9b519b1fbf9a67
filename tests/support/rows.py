"""Job rows written straight to a database, as the platform's writers would."""

import uuid
from datetime import UTC, datetime

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import add_job

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
"""Finished jobs of these tests end here, so that a cleanup deletes only theirs."""


def submitted(db: Database, project: str, job_type: str = "probe") -> str:
    """A row as `JobService.submit` writes it: queued, no run id yet."""
    job_id = uuid.uuid4().hex
    with db.transaction() as session:
        add_job(
            session,
            Job(
                id=job_id,
                type=job_type,
                project_id=project,
                status=JobStatus.QUEUED,
                params={},
                attempt=1,
                progress_done=0,
                created_at=LONG_AGO,
                updated_at=LONG_AGO,
            ),
        )
    return job_id
