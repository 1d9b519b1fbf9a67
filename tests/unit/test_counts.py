"""job_counts stays equal to a GROUP BY of jobs through every writer, also when writers
run at once; `count_drift` finds a difference and `rebuild_counts` repairs it."""

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from pastools_jobs.contracts import FailureInfo, JobEvent, Progress
from pastools_jobs.counts import (
    ROWS_PER_UPSERT,
    CountKey,
    actual_counts,
    count_drift,
    rebuild_counts,
    record_counts,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import JobCount
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.apply import apply_event, apply_progress, archive_attempt
from pastools_jobs.repository import (
    delete_finished_before,
    delete_job,
    get_job,
    job_stats,
)
from tests.support.rows import LONG_AGO, submitted


def event(
    job_id: str, run_id: str, project: str, status: JobStatus, job_type: str = "probe"
) -> JobEvent:
    error = None
    if status in (JobStatus.FAILED, JobStatus.CANCELLED):
        error = FailureInfo(type=status.value, message=status.value)
    return JobEvent(
        job_id=job_id,
        run_id=run_id,
        job_type=job_type,
        project_id=project,
        status=status,
        at=LONG_AGO + timedelta(minutes=1),
        created_at=LONG_AGO,
        result={"ok": True} if status is JobStatus.COMPLETED else None,
        error=error,
    )


def record(db: Database, *events: JobEvent) -> None:
    for each in events:
        with db.transaction() as session:
            apply_event(session, each)


def assert_exact(session: Session) -> None:
    assert count_drift(session) == []


def test_counts_follow_a_mixed_workload(db: Database) -> None:
    project = f"counts-{uuid.uuid4().hex[:8]}"
    completes, fails, cancelled, retried, progressed, kept = (
        submitted(db, project) for _ in range(6)
    )
    record(db, event(completes, "r1", project, JobStatus.RUNNING))
    record(db, event(completes, "r1", project, JobStatus.COMPLETED))
    record(db, event(fails, "r2", project, JobStatus.FAILED))
    record(db, event(cancelled, "r3", project, JobStatus.RUNNING))
    record(db, event(cancelled, "r3", project, JobStatus.CANCELLED))
    record(db, event(cancelled, "r3", project, JobStatus.COMPLETED))  # too late: ignored
    record(db, event(retried, "r4", project, JobStatus.FAILED))
    with db.transaction() as session:
        archive_attempt(session, get_job(session, retried, lock=True))
    record(db, event(retried, "r4b", project, JobStatus.RUNNING))
    record(db, event(progressed, "r5", project, JobStatus.QUEUED))
    with db.writing() as connection:
        assert apply_progress(connection, progressed, "r5", Progress(done=1, total=2))
    outside = uuid.uuid4().hex
    record(db, event(outside, "r6", project, JobStatus.RUNNING, "export"))
    with db.transaction() as session:
        delete_job(session, kept)
    with db.transaction() as session:
        stats = job_stats(session, project)
        assert stats.by_status == {
            "queued": 0,
            "running": 3,
            "completed": 1,
            "failed": 1,
            "cancelled": 1,
        }
        assert stats.by_type == {"probe": 5, "export": 1}
        assert_exact(session)
    with db.transaction() as session:
        # Other tests' jobs finished as long ago may go too.
        assert delete_finished_before(session, LONG_AGO + timedelta(days=1)) >= 3
    with db.transaction() as session:
        assert job_stats(session, project).total == 3
        assert_exact(session)


def test_counts_stay_exact_under_concurrent_writers(db: Database) -> None:
    project = f"counts-{uuid.uuid4().hex[:8]}"
    jobs = [submitted(db, project) for _ in range(24)]

    def run_to_the_end(index: int) -> None:
        job_id = jobs[index]
        final = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED][index % 3]
        with db.writing() as connection:
            apply_progress(connection, job_id, "r", Progress(done=1), likely_queued=True)
        record(db, event(job_id, "r", project, JobStatus.RUNNING))  # a replayed record
        with db.writing() as connection:
            apply_progress(connection, job_id, "r", Progress(done=2))
        record(db, event(job_id, "r", project, final))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run_to_the_end, range(len(jobs))))
    with db.transaction() as session:
        assert job_stats(session, project).by_status == {
            "queued": 0,
            "running": 0,
            "completed": 8,
            "failed": 8,
            "cancelled": 8,
        }
        assert_exact(session)


def test_drift_is_found_and_a_rebuild_repairs_it(db: Database) -> None:
    project = f"counts-{uuid.uuid4().hex[:8]}"
    submitted(db, project)
    with db.engine.connect() as connection, Session(connection) as session:
        session.execute(
            update(JobCount).where(JobCount.project_id == project).values(n=JobCount.n + 2)
        )
        [drift] = count_drift(session)
        assert (drift.project_id, drift.status, drift.type) == (project, "queued", "probe")
        assert (drift.counted, drift.actual) == (3, 1)
        assert rebuild_counts(session) == len(actual_counts(session))
        assert_exact(session)
        session.rollback()


def test_a_change_of_more_keys_than_one_upsert_takes_is_recorded_whole(db: Database) -> None:
    project = f"counts-{uuid.uuid4().hex[:8]}"
    keys = [(project, "queued", f"type-{index:03d}") for index in range(2 * ROWS_PER_UPSERT + 1)]
    added: Counter[CountKey] = Counter({key: 2 for key in keys})
    with db.writing() as connection:
        record_counts(connection, added)
    with db.transaction() as session:
        assert job_stats(session, project).total == 2 * len(keys)
    with db.writing() as connection:
        record_counts(connection, Counter({key: -2 for key in keys}))
    with db.transaction() as session:
        assert job_stats(session, project).total == 0
        assert_exact(session)
