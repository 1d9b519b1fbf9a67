"""What the worker counts when it records a job's end: the run's own wait and duration,
from the row's record of when its work started."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext
from activities.mirror import MirrorActivities
from pastools_jobs.config import Settings
from pastools_jobs.contracts import FailureInfo, JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.apply import archive_attempt
from pastools_jobs.repository import get_job
from pastools_jobs.storage import open_storage

SUBMITTED = datetime(2026, 1, 1, tzinfo=UTC)


def event(job_id: str, run: str, status: JobStatus, created: datetime, at: datetime) -> JobEvent:
    return JobEvent(
        job_id=job_id,
        run_id=run,
        job_type="export",
        project_id="p",
        status=status,
        at=at,
        created_at=created,
        started_at=at if status is JobStatus.RUNNING else None,
        result={"rows": 7} if status is JobStatus.COMPLETED else None,
        error=FailureInfo(type="Boom", message="m") if status is JobStatus.FAILED else None,
    )


def histogram(name: str) -> tuple[float, float]:
    """(sum, count) of an export histogram in this process's registry."""
    labels = {"type": "export"}
    total = REGISTRY.get_sample_value(f"{name}_sum", labels) or 0.0
    return total, REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0


def test_a_retry_waits_from_its_own_start_not_the_first_submission(
    db: Database, migrated_url: str, tmp_path: Path
) -> None:
    """A job that failed and was retried a day later: the retry's run was queued 2 s and
    worked 30 s; the day between is nobody's queue wait."""
    settings = Settings(data_dir=tmp_path, database_url=migrated_url, metrics_enabled=True)
    record = MirrorActivities(ActivityContext(settings, db, open_storage(settings)))
    job_id = uuid.uuid4().hex

    def recorded(*events: JobEvent) -> None:
        for each in events:
            asyncio.run(ActivityEnvironment().run(record.record_job_event, each))

    first = SUBMITTED + timedelta(seconds=1)
    recorded(
        event(job_id, "run-1", JobStatus.QUEUED, SUBMITTED, SUBMITTED),
        event(job_id, "run-1", JobStatus.RUNNING, SUBMITTED, first),
        event(job_id, "run-1", JobStatus.FAILED, SUBMITTED, first + timedelta(seconds=5)),
    )
    with db.transaction() as session:
        archive_attempt(session, get_job(session, job_id, lock=True))
    waited, durations = (
        histogram("pastools_job_queue_wait_seconds"),
        histogram("pastools_job_duration_seconds"),
    )

    retried = SUBMITTED + timedelta(days=1)
    started = retried + timedelta(seconds=2)
    recorded(
        event(job_id, "run-2", JobStatus.RUNNING, retried, started),
        event(job_id, "run-2", JobStatus.COMPLETED, retried, started + timedelta(seconds=30)),
    )

    wait_sum, wait_count = histogram("pastools_job_queue_wait_seconds")
    assert (wait_sum - waited[0], wait_count - waited[1]) == (2.0, 1.0)
    duration_sum, duration_count = histogram("pastools_job_duration_seconds")
    assert (duration_sum - durations[0], duration_count - durations[1]) == (30.0, 1.0)
