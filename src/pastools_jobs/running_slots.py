"""The per-project limit on running jobs, as rows of `running_slots`.

Temporal has no concurrency limit per fairness key, so the jobs database holds it: a job
run claims a slot before its work starts, and each claim counts its project's rows and
inserts its own in one transaction, serialised per project (PostgreSQL: an advisory lock
on the project; SQLite: one writer at a time). That holds across every worker process and
machine that shares the database. Runs that wait keep a row too, in the order they came,
so a free slot goes to the longest waiting run, not to whoever asks next.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, text, tuple_
from sqlalchemy.orm import Session

from pastools_jobs.db.models import Job, RunningSlot
from pastools_jobs.domain import JobStatus

_LIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class SlotHolder:
    """One run of one job of a project."""

    job_id: str
    run_id: str
    project_id: str


def claim_slot(session: Session, holder: SlotHolder, limit: int, now: datetime) -> bool:
    """Whether `holder` may run now: fewer than `limit` of its project's runs hold a slot
    and none waits ahead of it. If not, it is recorded as waiting (once: a later claim
    keeps its place in the line)."""
    _lock_project(session, holder.project_id)
    _reclaim_stale(session, holder.project_id, now)
    own = session.get(RunningSlot, (holder.job_id, holder.run_id))
    if own is None:
        own = RunningSlot(
            job_id=holder.job_id,
            run_id=holder.run_id,
            project_id=holder.project_id,
            running=False,
            since=now,
        )
        session.add(own)
        session.flush()
    if own.running:
        return True
    if _taken_or_ahead(session, own) >= limit:
        return False
    own.running = True
    own.since = now
    return True


def release_slot(session: Session, holder: SlotHolder, limit: int) -> list[tuple[str, str]]:
    """Give the slot (or the place in the line) back; returns the runs to wake, (job id,
    run id): the first waiting ones, as many as there are free slots now."""
    session.execute(
        delete(RunningSlot).where(
            RunningSlot.job_id == holder.job_id, RunningSlot.run_id == holder.run_id
        )
    )
    free = limit - running_count(session, holder.project_id)
    if free < 1:
        return []
    waiting = session.execute(
        select(RunningSlot.job_id, RunningSlot.run_id)
        .where(RunningSlot.project_id == holder.project_id, ~RunningSlot.running)
        .order_by(RunningSlot.since, RunningSlot.job_id)
        .limit(free)
    )
    return [(job_id, run_id) for job_id, run_id in waiting]


def running_count(session: Session, project_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RunningSlot)
            .where(RunningSlot.project_id == project_id, RunningSlot.running)
        )
        or 0
    )


def _lock_project(session: Session, project_id: str) -> None:
    """Serialise the claims of one project; SQLite's writers are serialised already (the
    engine begins every writing transaction IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('running_slots'), hashtext(:project))"),
            {"project": project_id},
        )


def _reclaim_stale(session: Session, project_id: str, now: datetime) -> None:
    """Rows of runs that can no longer release them (a worker lost the release, a run was
    terminated, a job deleted): their job is no longer queued or running in that run.
    Only after a grace period: a retry's new run may claim before the API has recorded
    that run on the job's row."""
    live = exists().where(
        Job.id == RunningSlot.job_id,
        Job.status.in_(_LIVE),
        (Job.run_id.is_(None)) | (Job.run_id == RunningSlot.run_id),
    )
    session.execute(
        delete(RunningSlot)
        .where(RunningSlot.project_id == project_id, RunningSlot.since < now - _GRACE, ~live)
        .execution_options(synchronize_session=False)
    )


def _taken_or_ahead(session: Session, own: RunningSlot) -> int:
    """Slots held, plus the runs waiting ahead of `own`."""
    ahead = and_(
        ~RunningSlot.running,
        tuple_(RunningSlot.since, RunningSlot.job_id) < tuple_(own.since, own.job_id),
    )
    return (
        session.scalar(
            select(func.count())
            .select_from(RunningSlot)
            .where(RunningSlot.project_id == own.project_id, RunningSlot.running | ahead)
        )
        or 0
    )
