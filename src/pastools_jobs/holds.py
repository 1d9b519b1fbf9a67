"""Holds: a whole project or job type paused, so that its new and queued jobs wait.

A hold is a row (`job_holds`) read at every submission and retry: a job submitted while
its project or type is held starts paused (`JobRequest.start_paused`) and waits until it
is resumed. Placing a hold pauses the jobs already queued (and, if asked, the running
ones, at their next checkpoint) through a `bulk` job, as lifting it resumes them: one
action per job, each recorded, cancellable and resumable like any bulk action. Bulk jobs
themselves are never held: they are how holds act.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from pastools_jobs.audit.trail import Actor, AuditAction, record
from pastools_jobs.clock import utcnow
from pastools_jobs.db.models import JobHold
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_catalog import BULK, JOB_TYPES
from workflows.params import BulkFilter, BulkParams

RunningJobs = Literal["finish", "pause"]
"""What a new hold does to the jobs already running: let them finish, or pause them."""


class HoldKind(StrEnum):
    PROJECT = "project"
    TYPE = "type"


@dataclass(frozen=True)
class Hold:
    kind: HoldKind
    target: str
    """The project id or the job type."""

    def bulk_filter(self, statuses: list[JobStatus]) -> BulkFilter:
        """The jobs the hold covers, bulk jobs excepted: they are how holds act."""
        if self.kind is HoldKind.PROJECT:
            held_types = [spec.name for spec in JOB_TYPES if spec.name != BULK.name]
            return BulkFilter(project_id=self.target, type=held_types, status=statuses)
        return BulkFilter(type=[self.target], status=statuses)

    def pausing(self, running: RunningJobs, reason: str | None) -> BulkParams:
        """The bulk action that pauses what the hold covers: queued jobs, and running
        ones if asked."""
        statuses = [JobStatus.QUEUED]
        if running == "pause":
            statuses.append(JobStatus.RUNNING)
        return BulkParams(action="pause", filter=self.bulk_filter(statuses), reason=reason)

    def resuming(self, reason: str | None) -> BulkParams:
        """The bulk action that resumes every paused job the hold covers."""
        filter = self.bulk_filter([JobStatus.QUEUED, JobStatus.RUNNING])
        return BulkParams(action="resume", filter=filter, reason=reason)


def is_held(session: Session, project_id: str, job_type: str) -> bool:
    """Whether a job of this project and type, submitted now, starts paused."""
    if job_type == BULK.name:
        return False
    covering = or_(
        (JobHold.kind == HoldKind.PROJECT) & (JobHold.target == project_id),
        (JobHold.kind == HoldKind.TYPE) & (JobHold.target == job_type),
    )
    return session.scalar(select(JobHold.kind).where(covering).limit(1)) is not None


def place(
    session: Session, hold: Hold, running: RunningJobs, actor: Actor, reason: str | None
) -> JobHold:
    """The hold, placed (or its running policy and reason updated), with its audit entry."""
    row = session.get(JobHold, (hold.kind.value, hold.target), with_for_update=True)
    if row is None:
        row = JobHold(kind=hold.kind.value, target=hold.target)
        session.add(row)
    row.running, row.reason = running, reason
    row.created_by, row.created_at = actor.label, utcnow()
    _audit(session, hold, AuditAction.HOLD_PLACE, actor, reason, {"running": running})
    return row


def lift(session: Session, hold: Hold, actor: Actor, reason: str | None) -> bool:
    """Remove the hold; whether there was one. Recorded either way: the resume that
    follows is the operator's action too."""
    result = session.execute(
        delete(JobHold).where(JobHold.kind == hold.kind.value, JobHold.target == hold.target)
    )
    deleted = int(getattr(result, "rowcount", 0))
    _audit(session, hold, AuditAction.HOLD_LIFT, actor, reason, {"was_held": deleted > 0})
    return deleted > 0


def holds(session: Session, project_id: str | None) -> list[JobHold]:
    """Every hold, or those that touch one project (its own, and every type's)."""
    query = select(JobHold).order_by(JobHold.created_at)
    if project_id is not None:
        query = query.where(
            or_(
                JobHold.kind == HoldKind.TYPE,
                (JobHold.kind == HoldKind.PROJECT) & (JobHold.target == project_id),
            )
        )
    return list(session.scalars(query))


def _audit(
    session: Session,
    hold: Hold,
    action: AuditAction,
    actor: Actor,
    reason: str | None,
    details: dict[str, object],
) -> None:
    project = hold.target if hold.kind is HoldKind.PROJECT else None
    details = {"kind": hold.kind.value, "target": hold.target, **details}
    record(session, actor, action, project_id=project, reason=reason, details=details)
