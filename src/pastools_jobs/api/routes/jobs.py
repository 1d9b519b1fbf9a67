"""/api/jobs: the original module's endpoints, plus filters, cursors and cleanup."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from pydantic import Field

from pastools_jobs.api.auth import PrincipalDep, authenticated, visible_job
from pastools_jobs.api.deps import ServiceDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import (
    BucketOut,
    CleanupOut,
    CleanupRequest,
    JobActionRequest,
    JobId,
    JobOut,
    JobPageOut,
    JobStatsOut,
    JobSubmission,
    JobType,
    ProjectId,
    TimeseriesOut,
    job_out,
)
from pastools_jobs.auth.principal import Role
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.domain import InvalidJobInput, JobStatus
from pastools_jobs.param_filters import parse_param_filters
from pastools_jobs.repository import JobFilter, JobStats
from pastools_jobs.service import Submission, Submitted

router = APIRouter(
    prefix="/api/jobs",
    tags=["jobs"],
    responses=responses(401, 422, 503),
    dependencies=[authenticated],
)
for_one_job = responses(404)
with_body = responses(400, 413)
for_transition = responses(403, 404, 409)

Window = Literal["hour", "day"]
WINDOWS = {
    "hour": (timedelta(minutes=1), timedelta(hours=1)),
    "day": (timedelta(hours=1), timedelta(days=1)),
}
MAX_PAGE = 500
MAX_VALUES = 20
"""Values of a repeatable filter (`status`, `type`): more would only repeat one."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def utc_bound(moment: datetime | None) -> datetime | None:
    """In UTC, as the table stores them; times without a zone are taken as UTC.

    Bounded, so that no time near year 1 or 9999 overflows in a conversion or a query.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=UTC)
    if not EARLIEST <= moment <= LATEST:
        raise InvalidJobInput(f"Times must lie between {EARLIEST:%Y} and {LATEST:%Y}.")
    return moment


def _stats_out(stats: JobStats) -> JobStatsOut:
    return JobStatsOut(
        total=stats.total, by_status=stats.by_status, by_type=stats.by_type, paused=stats.paused
    )


async def _page(
    service: ServiceDep,
    settings: SettingsDep,
    where: JobFilter,
    limit: int,
    cursor: str | None,
) -> JobPageOut:
    if where.created_from and where.created_to and where.created_from > where.created_to:
        raise InvalidJobInput("created_from must not be later than created_to.")
    page = await service.page(where, limit, cursor)
    now = utcnow()
    return JobPageOut(
        items=[job_out(job, settings, now) for job in page.jobs], next_cursor=page.next_cursor
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="1 to 200 visible ASCII characters, unique per request within the project. "
        "The same key with the same body returns the job the first request created (200, "
        "`Idempotent-Replayed: true`) instead of a second job; with a different body it is "
        "a 422. Retry a submission whose answer you did not get with the same key.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
for_submission: dict[int | str, dict[str, Any]] = {
    200: {
        "model": JobOut,
        "description": "The job an earlier request with the same Idempotency-Key created.",
        "headers": {REPLAYED_HEADER: {"schema": {"type": "string", "enum": ["true"]}}},
    },
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    responses={**for_submission, **responses(403, 404), **with_body},
)
async def submit_job(
    submission: Annotated[JobSubmission, Body()],
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Start a job; it is `queued` until a worker picks it up (operator or admin; 400: import
    source refused)."""
    principal.require_project(submission.project_id, Role.OPERATOR)
    submitted = await service.submit(
        Submission(
            type=submission.type,
            project_id=submission.project_id,
            params=submission.params.model_dump(mode="json"),
            run_timeout_seconds=submission.timeout_seconds,
            priority=submission.priority,
            idempotency_key=idempotency_key,
            scope=principal.project_id,
            actor=principal.actor,
        )
    )
    return submitted_out(submitted, response, settings)


def submitted_out(submitted: Submitted, response: Response, settings: Settings) -> JobOut:
    """A submission's answer: 201 with the new job, or 200 with the job an earlier request
    with the same Idempotency-Key made."""
    if submitted.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers[REPLAYED_HEADER] = "true"
    return job_out(submitted.job, settings, utcnow())


@router.get("", response_model=JobPageOut)
async def list_jobs(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[list[JobStatus] | None, Query(max_length=MAX_VALUES)] = None,
    type: Annotated[list[JobType] | None, Query(max_length=MAX_VALUES)] = None,
    project_id: Annotated[ProjectId | None, Query()] = None,
    created_from: Annotated[datetime | None, Query()] = None,
    created_to: Annotated[datetime | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the job id.")] = None,
    error_type: Annotated[
        list[Annotated[str, Field(max_length=200)]] | None,
        Query(max_length=MAX_VALUES, description="Why a job failed, e.g. `SourceNotFound`."),
    ] = None,
    paused: Annotated[
        bool | None, Query(description="Only paused jobs (`true`) or only the others (`false`).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JobPageOut:
    """Jobs, newest first, filtered; follow `next_cursor` for the next page.

    Also by parameters: `param.<name>=<value>` finds the jobs whose parameter `<name>` is
    `<value>` (a number, `true`, `false` or `null` also as that JSON value), and a value
    ending in `*` those whose string parameter begins with the rest, e.g.
    `param.format=parquet&param.source=uploads/2026-*`. One name given twice matches
    either value; every filter must match."""
    where = JobFilter(
        statuses=status or (),
        types=[str(t) for t in type or ()],
        project_id=principal.project_scope(project_id),
        created_from=utc_bound(created_from),
        created_to=utc_bound(created_to),
        id_contains=q or None,
        error_types=error_type or (),
        params=parse_param_filters(request.query_params.multi_items()),
        paused=paused,
    )
    return await _page(service, settings, where, limit, cursor)


@router.get("/stats", response_model=JobStatsOut)
async def all_stats(service: ServiceDep, principal: PrincipalDep) -> JobStatsOut:
    """Counts over all projects the token sees: total, per status, per type."""
    return _stats_out(await service.stats(principal.project_scope(None)))


@router.get("/timeseries", response_model=TimeseriesOut)
async def timeseries(
    service: ServiceDep,
    principal: PrincipalDep,
    window: Annotated[Window, Query(description="hour: per minute; day: per hour")] = "hour",
    project_id: Annotated[ProjectId | None, Query()] = None,
) -> TimeseriesOut:
    """Jobs completed and failed per bucket, oldest bucket first, for the dashboard's chart."""
    bucket, span = WINDOWS[window]
    scope = principal.project_scope(project_id)
    counts = await service.finished_per_bucket(bucket, span, scope)
    return TimeseriesOut(
        bucket_seconds=int(bucket.total_seconds()),
        buckets=[BucketOut(start=c.start, completed=c.completed, failed=c.failed) for c in counts],
    )


@router.post("/cleanup", response_model=CleanupOut, responses={**responses(403), **with_body})
async def cleanup(
    request: CleanupRequest, service: ServiceDep, principal: PrincipalDep
) -> CleanupOut:
    """Delete finished (completed, failed, cancelled) jobs older than the given age (admin)."""
    principal.require(Role.ADMIN)
    deleted = await service.cleanup(timedelta(days=request.older_than_days), principal.actor)
    return CleanupOut(deleted=deleted)


@router.get("/projects/{project_id}", response_model=JobPageOut)
async def project_jobs(
    project_id: ProjectId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[list[JobStatus] | None, Query(max_length=MAX_VALUES)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JobPageOut:
    """A project's jobs, newest first."""
    principal.require_project(project_id)
    where = JobFilter(statuses=status or (), project_id=project_id)
    return await _page(service, settings, where, limit, cursor)


@router.get("/projects/{project_id}/stats", response_model=JobStatsOut)
async def project_stats(
    project_id: ProjectId, service: ServiceDep, principal: PrincipalDep
) -> JobStatsOut:
    """A project's counts: total, per status, per type."""
    principal.require_project(project_id)
    return _stats_out(await service.stats(project_id))


@router.get("/{job_id}", response_model=JobOut, responses=for_one_job)
async def get_job(
    job_id: JobId, service: ServiceDep, settings: SettingsDep, principal: PrincipalDep
) -> JobOut:
    return job_out(await visible_job(service, principal, job_id), settings, utcnow())


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**for_transition, **with_body},
)
async def cancel_job(
    job_id: JobId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> JobOut:
    """Request cancellation of a queued or running job (409 otherwise); the optional
    `reason` goes to the audit trail and, with who asked, into Temporal's history."""
    principal.require_job(await service.get(job_id), Role.OPERATOR)
    reason = body.reason if body else None
    return job_out(await service.cancel(job_id, principal.actor, reason), settings, utcnow())


@router.post("/{job_id}/retry", response_model=JobOut, responses={**for_transition, **with_body})
async def retry_job(
    job_id: JobId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> JobOut:
    """Run a failed or cancelled job again under the same id (409 otherwise): a new run,
    started by a `retry` signal that carries who retried it and the optional `reason`."""
    principal.require_job(await service.get(job_id), Role.OPERATOR)
    retried = await service.retry(
        job_id,
        scope=principal.project_id,
        actor=principal.actor,
        reason=body.reason if body else None,
    )
    return job_out(retried, settings, utcnow())


@router.post(
    "/{job_id}/pause",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**for_transition, **with_body},
)
async def pause_job(
    job_id: JobId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> JobOut:
    """Pause a queued or running job (409 otherwise): its work stops at its next
    checkpoint and waits; `paused` turns true once it has stopped (at once for a job whose
    work has not begun). The job stays cancellable; the `pause` signal carries who and
    the optional `reason` into Temporal's history."""
    principal.require_job(await service.get(job_id), Role.OPERATOR)
    reason = body.reason if body else None
    return job_out(await service.pause(job_id, principal.actor, reason), settings, utcnow())


@router.post(
    "/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses={**for_transition, **with_body},
)
async def resume_job(
    job_id: JobId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> JobOut:
    """Resume a paused job from the checkpoint it stopped at (a job not paused is left
    as it is; 409 for one that has ended)."""
    principal.require_job(await service.get(job_id), Role.OPERATOR)
    reason = body.reason if body else None
    return job_out(await service.resume(job_id, principal.actor, reason), settings, utcnow())
