"""The audit trail as the API reads and adds to it, off the event loop, and a job's
timeline: its entries in the trail together with what was done to it in Temporal itself."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from pastools_jobs.audit.queries import AuditFilter, AuditPage, audit_page, job_entries
from pastools_jobs.audit.temporal_actions import TemporalAction, temporal_actions
from pastools_jobs.audit.trail import (
    Actor,
    ActorKind,
    AuditAction,
    Channel,
    actor_of,
    record,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import AuditEntry, Job
from pastools_jobs.domain import TemporalUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    action: str
    actor: Actor
    reason: str | None
    details: dict[str, Any] | None
    run_id: str | None = None
    """For what Temporal recorded: the run it was done to."""
    request_id: str | None = None


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]
    """Oldest first."""
    temporal_read: bool
    """False when Temporal could not be asked: the entries are the platform's alone."""


class AuditTrail:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        actor: Actor,
        action: AuditAction,
        *,
        project_id: str | None = None,
        job_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """An action taken elsewhere (a sign-in, a file stored, a doctor's repair),
        recorded once it has been."""
        await self._db.run(
            lambda session: record(
                session, actor, action, project_id=project_id, job_id=job_id, details=details
            )
        )

    async def page(self, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
        return await self._db.run(lambda session: audit_page(session, where, limit, cursor))

    async def timeline(self, job: Job, client: Client) -> Timeline:
        """The job's entries, and the actions on its runs that Temporal recorded from
        others than the platform (the `temporal` CLI, the Web UI), oldest first."""
        trail = await self._db.run(
            lambda session: job_entries(session, job.id, job.project_id, job.created_at)
        )
        entries = [_from_trail(entry) for entry in trail]
        run_ids = [attempt.run_id for attempt in job.past_attempts if attempt.run_id]
        if job.run_id:
            run_ids.append(job.run_id)
        try:
            outside = await temporal_actions(client, job.id, run_ids)
        except (TemporalUnavailable, RPCError) as error:
            log.warning("the histories of job %s could not be read: %s", job.id, error)
            return Timeline(entries, temporal_read=False)
        merged = entries + [_from_temporal(action) for action in outside]
        return Timeline(sorted(merged, key=lambda entry: entry.at), temporal_read=True)


def _from_trail(entry: AuditEntry) -> TimelineEntry:
    return TimelineEntry(
        at=entry.at,
        action=entry.action,
        actor=actor_of(entry),
        reason=entry.reason,
        details=entry.details,
        request_id=entry.request_id,
    )


def _from_temporal(action: TemporalAction) -> TimelineEntry:
    actor = Actor(ActorKind.TEMPORAL, Channel.TEMPORAL, name=action.identity or None)
    return TimelineEntry(
        at=action.at,
        action=action.action,
        actor=actor,
        reason=action.reason,
        details=action.details or None,
        run_id=action.run_id,
    )
