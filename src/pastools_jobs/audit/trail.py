"""Recording operator actions: one entry per action, in the transaction that takes it.

Who acted is an `Actor`: a token (its id and name), nobody in particular when
authentication is off, the doctor, a bulk job acting for whoever started it, the
cleanup schedule, or someone at the `pastools` command line. Through what: the REST API,
the dashboard (its sign-in cookie), the command line or a worker.
"""

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from pastools_jobs.clock import utcnow
from pastools_jobs.db.models import AuditEntry
from pastools_jobs.logs import REQUEST_ID

REASON_MAX_LENGTH = 1000


class ActorKind(StrEnum):
    TOKEN = "token"
    NO_AUTH = "no-auth"
    DOCTOR = "doctor"
    BULK_JOB = "bulk-job"
    SCHEDULE = "schedule"
    COMMAND_LINE = "command-line"
    TEMPORAL = "temporal"
    """Someone acting in Temporal directly (its CLI or Web UI), as its history says."""


class Channel(StrEnum):
    API = "api"
    DASHBOARD = "dashboard"
    CLI = "cli"
    WORKER = "worker"
    TEMPORAL = "temporal"


class AuditAction(StrEnum):
    JOB_SUBMIT = "job.submit"
    JOB_CANCEL = "job.cancel"
    JOB_RETRY = "job.retry"
    JOB_DELETE = "job.delete"
    JOB_PAUSE = "job.pause"
    JOB_RESUME = "job.resume"
    HOLD_PLACE = "hold.place"
    HOLD_LIFT = "hold.lift"
    BULK_START = "bulk.start"
    JOBS_CLEANUP = "jobs.cleanup"
    PROJECT_CREATE = "project.create"
    PROJECT_SCHEMA = "project.schema"
    PROJECT_TESTS = "project.tests"
    PROJECT_COLUMN_TYPES = "project.column_types"
    PROJECT_UPLOAD = "project.upload"
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_DELETE = "webhook.delete"
    SCHEDULE_CREATE = "schedule.create"
    SCHEDULE_UPDATE = "schedule.update"
    SCHEDULE_DELETE = "schedule.delete"
    SCHEDULE_PAUSE = "schedule.pause"
    SCHEDULE_UNPAUSE = "schedule.unpause"
    SCHEDULE_TRIGGER = "schedule.trigger"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    SIGN_IN = "session.sign_in"
    SIGN_OUT = "session.sign_out"
    DOCTOR_REPAIR = "doctor.repair"
    AUDIT_RETENTION = "audit.retention"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    channel: Channel
    id: str | None = None
    """A token's id, a bulk job's id; None where the kind says it all."""
    name: str | None = None
    """A token's name, the user at the command line."""

    @property
    def label(self) -> str:
        """How Temporal's history and a person read it: `token 1f2e (alice)`."""
        words = [self.kind.value.replace("-", " ")]
        if self.id:
            words.append(self.id)
        if self.name:
            words.append(f"({self.name})")
        return " ".join(words)


NO_AUTH = Actor(ActorKind.NO_AUTH, Channel.API)
DOCTOR = Actor(ActorKind.DOCTOR, Channel.CLI)
CLEANUP_SCHEDULE = Actor(ActorKind.SCHEDULE, Channel.WORKER, name="cleanup")


def actor_of(entry: AuditEntry) -> Actor:
    """Who an entry says acted."""
    return Actor(
        ActorKind(entry.actor_kind), Channel(entry.channel), entry.actor_id, entry.actor_name
    )


def command_line_user() -> Actor:
    """Whoever runs `pastools tokens …`: they reach the database, which outranks any token,
    so the system user is the best name there is."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return Actor(ActorKind.COMMAND_LINE, Channel.CLI, name=user)


def bulk_job(job_id: str) -> Actor:
    """The actor of each job a bulk job changes; the bulk job's own entry says who started it."""
    return Actor(ActorKind.BULK_JOB, Channel.WORKER, id=job_id)


def in_temporal_words(actor: Actor, reason: str | None) -> str:
    """The reason given to Temporal with a cancel: its history then says who and why too."""
    return f"{actor.label}: {reason}" if reason else actor.label


def audit_entry(
    actor: Actor,
    action: AuditAction,
    *,
    project_id: str | None = None,
    job_id: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry's columns; the request being served (if any) is named, so that its log
    lines are found from the entry."""
    return {
        "at": utcnow(),
        "action": action.value,
        "actor_kind": actor.kind.value,
        "actor_id": actor.id,
        "actor_name": actor.name,
        "channel": actor.channel.value,
        "project_id": project_id,
        "job_id": job_id,
        "reason": reason,
        "details": details,
        "request_id": REQUEST_ID.get(),
    }


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    project_id: str | None = None,
    job_id: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the entry to the action's own transaction: it is there exactly if the action is."""
    entry = audit_entry(
        actor, action, project_id=project_id, job_id=job_id, reason=reason, details=details
    )
    session.execute(insert(AuditEntry), [entry])


def record_many(session: Session, entries: Iterable[dict[str, Any]]) -> None:
    """Entries of `audit_entry`, in one statement (a bulk job's page of deletions)."""
    rows = list(entries)
    if rows:
        session.execute(insert(AuditEntry), rows)
