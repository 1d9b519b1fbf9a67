"""/api/audit and a job's timeline: who did what, through what, and why.

Entries are read here and never changed: the API has no route that updates or deletes
one. A caller who sees one project reads that project's entries only.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pastools_jobs.api.auth import PrincipalDep, authenticated, visible_job
from pastools_jobs.api.deps import AuditTrailDep, ServiceDep, TemporalClientDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.routes.jobs import MAX_PAGE, MAX_VALUES, utc_bound
from pastools_jobs.api.schemas import JobId, ProjectId
from pastools_jobs.audit.queries import AuditFilter
from pastools_jobs.audit.service import TimelineEntry
from pastools_jobs.audit.trail import Actor, ActorKind, AuditAction, Channel, actor_of
from pastools_jobs.db.models import AuditEntry
from pastools_jobs.domain import InvalidJobInput

router = APIRouter(tags=["audit"], responses=responses(401, 422, 503), dependencies=[authenticated])


class ActorOut(BaseModel):
    kind: ActorKind
    id: str | None = Field(description="A token's id, a bulk job's id.")
    name: str | None = Field(description="A token's name; for `temporal`, its client identity.")
    channel: Channel
    label: str = Field(description="All of it in a few words, as Temporal's history has it.")


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    action: AuditAction
    actor: ActorOut
    project_id: str | None
    job_id: str | None
    reason: str | None
    details: dict[str, Any] | None
    request_id: str | None = Field(description="The X-Request-ID of the request that acted.")


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class TimelineEntryOut(BaseModel):
    at: datetime
    action: str = Field(
        description="An audit action (`job.cancel`, …), or what was done in Temporal itself: "
        "`temporal.start`, `temporal.cancel`, `temporal.terminate`, `temporal.signal`, "
        "`temporal.reset`."
    )
    actor: ActorOut
    reason: str | None
    details: dict[str, Any] | None
    run_id: str | None = Field(description="For what Temporal recorded: the run it touched.")
    request_id: str | None


class TimelineOut(BaseModel):
    entries: list[TimelineEntryOut] = Field(description="Oldest first.")
    temporal_read: bool = Field(
        description="False when Temporal could not be reached: only the platform's own entries."
    )


def actor_out(actor: Actor) -> ActorOut:
    return ActorOut(
        kind=actor.kind, id=actor.id, name=actor.name, channel=actor.channel, label=actor.label
    )


def _entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        action=AuditAction(entry.action),
        actor=actor_out(actor_of(entry)),
        project_id=entry.project_id,
        job_id=entry.job_id,
        reason=entry.reason,
        details=entry.details,
        request_id=entry.request_id,
    )


def _timeline_entry_out(entry: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(
        at=entry.at,
        action=entry.action,
        actor=actor_out(entry.actor),
        reason=entry.reason,
        details=entry.details,
        run_id=entry.run_id,
        request_id=entry.request_id,
    )


@router.get("/api/audit", response_model=AuditPageOut, responses=responses(404))
async def list_audit_entries(
    trail: AuditTrailDep,
    principal: PrincipalDep,
    project_id: Annotated[ProjectId | None, Query()] = None,
    job_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[list[AuditAction] | None, Query(max_length=MAX_VALUES)] = None,
    actor_id: Annotated[
        str | None, Query(min_length=1, max_length=200, description="A token's id.")
    ] = None,
    channel: Annotated[Channel | None, Query()] = None,
    at_from: Annotated[datetime | None, Query(alias="from")] = None,
    at_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> AuditPageOut:
    """Operator actions, newest first, of the projects the token sees: submissions,
    cancels, retries, bulk actions, cleanups, schema and test suite changes, uploads,
    tokens created and revoked, sign-ins and sign-outs, the doctor's repairs."""
    where = AuditFilter(
        project_id=principal.project_scope(project_id),
        job_id=job_id,
        actions=[a.value for a in action or ()],
        actor_id=actor_id,
        channel=channel.value if channel else None,
        at_from=utc_bound(at_from),
        at_to=utc_bound(at_to),
    )
    if where.at_from and where.at_to and where.at_from > where.at_to:
        raise InvalidJobInput("from must not be later than to.")
    page = await trail.page(where, limit, cursor)
    return AuditPageOut(items=[_entry_out(e) for e in page.entries], next_cursor=page.next_cursor)


@router.get("/api/jobs/{job_id}/timeline", response_model=TimelineOut, responses=responses(404))
async def job_timeline(
    job_id: JobId,
    service: ServiceDep,
    trail: AuditTrailDep,
    client: TemporalClientDep,
    principal: PrincipalDep,
) -> TimelineOut:
    """Who did what to the job, oldest first: its audit entries, and what was done to its
    runs in Temporal directly (the `temporal` CLI, the Web UI) with the identity and reason
    Temporal recorded. Read while Temporal cannot be reached, it has the entries alone."""
    job = await visible_job(service, principal, job_id)
    timeline = await trail.timeline(job, client)
    return TimelineOut(
        entries=[_timeline_entry_out(e) for e in timeline.entries],
        temporal_read=timeline.temporal_read,
    )
