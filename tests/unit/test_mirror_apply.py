"""The mirror's writes: whatever order and however often Temporal's news arrives, the row
ends equal to Temporal's view of the job's newest run, and never moves backwards."""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pastools_jobs.contracts import FailureInfo, JobEvent, Progress
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.apply import (
    apply_event,
    apply_progress,
    apply_started,
    archive_attempt,
)
from pastools_jobs.repository import get_job
from tests.support.rows import submitted

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FINAL = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]


def run_events(job_id: str, index: int, final: JobStatus | None) -> list[JobEvent]:
    """One run's news: it started, ran, and (unless still open) finished."""
    created = T0 + timedelta(minutes=10 * index)
    base = {
        "job_id": job_id,
        "run_id": f"run-{index}",
        "job_type": "export",
        "project_id": "p",
        "created_at": created,
    }
    events = [
        JobEvent(**base, status=JobStatus.QUEUED, at=created),
        JobEvent(**base, status=JobStatus.RUNNING, at=created + timedelta(seconds=1)),
    ]
    if final is not None:
        events.append(
            JobEvent(
                **base,
                status=final,
                at=created + timedelta(minutes=1),
                result={"run": index} if final is JobStatus.COMPLETED else None,
                error=None
                if final is JobStatus.COMPLETED
                else FailureInfo(type=final.value, message=f"run {index}"),
            )
        )
    return events


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[JobStatus | None], list[int]]:
    """Runs of one job (all but the last finished), and a delivery order with repeats."""
    finals: list[JobStatus | None] = draw(st.lists(st.sampled_from(FINAL), min_size=0, max_size=3))
    finals.append(draw(st.sampled_from([None, *FINAL])))
    count = sum(3 if final else 2 for final in finals)
    order = draw(st.lists(st.integers(0, count - 1), max_size=count * 2))
    return finals, order


def reconcile(db: Database, job_id: str, truth: dict[str, JobEvent], newest: JobEvent) -> None:
    """What the reconciler does on seeing the newest run: first close the row's own run
    with Temporal's truth about it, then apply the newest run's state."""
    for _ in range(len(truth) + 1):
        with db.transaction() as session:
            job = session.get(Job, job_id)
            current = job.run_id if job is not None else None
        if current == newest.run_id and job is not None and job.status == newest.status:
            return
        with db.transaction() as session:
            if current is not None and current != newest.run_id:
                apply_event(session, truth[current])
        with db.transaction() as session:
            apply_event(session, newest)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories())
def test_row_converges_to_the_newest_run_whatever_the_order(db: Database, history) -> None:
    finals, order = history
    job_id = uuid.uuid4().hex
    events = [e for i, final in enumerate(finals) for e in run_events(job_id, i, final)]
    truth = {f"run-{i}": run_events(job_id, i, final)[-1] for i, final in enumerate(finals)}
    newest = truth[f"run-{len(finals) - 1}"]

    before: tuple[str | None, str] | None = None
    for i in order:
        with db.transaction() as session:
            apply_event(session, events[i])
            job = get_job(session, job_id)
            after = (job.run_id, job.status)
        if before is not None and before[0] == after[0]:
            rank = [s.value for s in JobStatus]
            assert rank.index(after[1]) >= rank.index(before[1]), f"{before} -> {after}"
            assert not (JobStatus(before[1]).is_terminal and after != before), (
                f"{before} -> {after}"
            )
        before = after
    reconcile(db, job_id, truth, newest)

    with db.transaction() as session:
        job = get_job(session, job_id)
        assert job.run_id == newest.run_id
        assert job.status == newest.status
        if newest.status is JobStatus.COMPLETED:
            assert job.result == newest.result
        if newest.status.is_terminal:
            assert job.completed_at == newest.at
        archived = [attempt.run_id for attempt in job.past_attempts]
        runs = [f"run-{i}" for i in range(len(finals))]
        assert archived == [r for r in runs if r in archived], "attempts out of order"
        assert [a.attempt for a in job.past_attempts] == list(range(1, len(archived) + 1))
        assert job.attempt == len(archived) + 1


def test_progress_is_recorded_only_for_the_open_current_run(db: Database) -> None:
    job_id = uuid.uuid4().hex
    [queued, running, done] = run_events(job_id, 0, JobStatus.COMPLETED)
    with db.transaction() as session:
        apply_event(session, queued)
    with db.writing() as connection:
        assert apply_progress(connection, job_id, "run-0", Progress(done=3, total=10, message="m"))
        assert not apply_progress(connection, job_id, "other-run", Progress(done=9, total=10))
    with db.transaction() as session:
        job = get_job(session, job_id)
        assert (job.status, job.progress_done, job.progress_message) == ("running", 3, "m")
        apply_event(session, running)
        apply_event(session, done)
    with db.transaction() as session:
        assert not apply_progress(session.connection(), job_id, "run-0", Progress(done=5, total=10))
        job = get_job(session, job_id)
        assert (job.status, job.progress_done) == ("completed", 10)


def test_a_retry_archives_the_attempt_and_ignores_late_news_of_it(db: Database) -> None:
    job_id = uuid.uuid4().hex
    first = run_events(job_id, 0, JobStatus.FAILED)
    with db.transaction() as session:
        for event in first:
            apply_event(session, event)
    with db.transaction() as session:
        archive_attempt(session, get_job(session, job_id, lock=True))
    with db.transaction() as session:
        assert not apply_event(session, first[-1]), "news of the archived run changed the row"
        job = get_job(session, job_id)
        assert (job.status, job.attempt, job.run_id, job.error_type) == ("queued", 2, None, None)
        assert [a.status for a in job.past_attempts] == ["failed"]
        second = run_events(job_id, 1, JobStatus.COMPLETED)
        for event in second:
            apply_event(session, event)
    with db.transaction() as session:
        job = get_job(session, job_id)
        assert (job.status, job.run_id, job.attempt) == ("completed", "run-1", 2)


def test_first_progress_of_the_run_the_api_started_makes_its_row_running(db: Database) -> None:
    job_id = submitted(db, "p")
    with db.writing() as connection:
        assert apply_progress(
            connection, job_id, "run-0", Progress(done=1, total=4, message="m"), likely_queued=True
        )
    with db.transaction() as session:
        job = get_job(session, job_id)
        assert (job.status, job.run_id, job.progress_done) == ("running", "run-0", 1)
        assert job.started_at is not None
        started = job.started_at
    with db.writing() as connection:
        assert apply_progress(connection, job_id, "run-0", Progress(done=2, total=4))
        assert not apply_progress(connection, job_id, "run-1", Progress(done=3, total=4))
        assert apply_progress(connection, job_id, "run-0", Progress(done=3), likely_queued=True)
    with db.transaction() as session:
        job = get_job(session, job_id)
        assert (job.run_id, job.progress_done, job.started_at) == ("run-0", 3, started)


def test_progress_of_an_archived_run_never_takes_over_a_retried_row(db: Database) -> None:
    job_id = uuid.uuid4().hex
    [queued, running, failed] = run_events(job_id, 0, JobStatus.FAILED)
    with db.transaction() as session:
        for event in (queued, running, failed):
            apply_event(session, event)
    with db.transaction() as session:
        archive_attempt(session, get_job(session, job_id, lock=True))  # the retry's new row
    with db.transaction() as session:
        assert not apply_progress(session.connection(), job_id, "run-0", Progress(done=1, total=2))
        job = get_job(session, job_id)
        assert (job.status, job.run_id) == ("queued", None)


def test_work_without_a_report_yet_shows_running_from_when_it_began(db: Database) -> None:
    job_id = submitted(db, "p", "export")
    began = T0 + timedelta(seconds=3)
    done = run_events(job_id, 0, JobStatus.COMPLETED)[-1]
    with db.writing() as connection:
        assert apply_started(connection, job_id, "run-0", began)
        assert not apply_started(connection, job_id, "run-0", began + timedelta(seconds=1))
    with db.transaction() as session:
        job = get_job(session, job_id)
        assert (job.status, job.run_id, job.started_at) == ("running", "run-0", began)
        apply_event(session, done)
    with db.transaction() as session:
        assert not apply_started(session.connection(), job_id, "run-0", began), (
            "an ended run restarted"
        )
        assert get_job(session, job_id).status == "completed"
