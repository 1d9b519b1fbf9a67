"""A partitioned job's one progress bar, on each backend: the row shows the sum of what
each partition reports, a retried partition going back to its checkpoint takes the bar
back with it, and a new run of the job starts counting from nothing."""

from sqlalchemy import update

from pastools_jobs.contracts import Progress
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.mirror.apply import apply_partition_progress
from pastools_jobs.repository import get_job
from tests.support.rows import submitted

TOTAL = 300


def report(db: Database, job_id: str, run_id: str, partition: int, done: int) -> Progress:
    with db.writing() as connection:
        return apply_partition_progress(
            connection, job_id, run_id, partition, Progress(done=done, message="m"), TOTAL
        )


def row_progress(db: Database, job_id: str) -> tuple[str, int, int | None]:
    with db.transaction() as session:
        job = get_job(session, job_id)
        return job.status, job.progress_done, job.progress_total


def test_the_row_shows_the_sum_over_the_partitions(db: Database) -> None:
    job_id = submitted(db, "partitions", "validation")
    report(db, job_id, "run-1", 0, 40)
    report(db, job_id, "run-1", 2, 25)
    assert row_progress(db, job_id) == ("running", 65, TOTAL)

    report(db, job_id, "run-1", 0, 100)
    job = report(db, job_id, "run-1", 2, 10)  # retried from its checkpoint
    assert (job.done, job.percent) == (110, 36)
    assert row_progress(db, job_id) == ("running", 110, TOTAL)


def test_a_new_run_counts_afresh(db: Database) -> None:
    job_id = submitted(db, "partitions", "validation")
    report(db, job_id, "run-1", 1, 90)
    with db.writing() as connection:  # retried: the row holds the new run
        connection.execute(update(Job).where(Job.id == job_id).values(run_id="run-2"))
    report(db, job_id, "run-2", 0, 5)
    assert row_progress(db, job_id) == ("running", 5, TOTAL)
