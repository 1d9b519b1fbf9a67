"""/api/jobs/bulk: act on every job that matches a filter, after a preview.

The action runs as a `bulk` job of its own (listed, shown, cancellable like any job);
the row's project is the filter's, or `*` for an admin's action over every project.
"""

from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import ServiceDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.routes.jobs import IdempotencyKey, for_submission, submitted_out
from pastools_jobs.api.schemas import JobOut, job_out
from pastools_jobs.audit.trail import AuditAction
from pastools_jobs.bulk import authorized
from pastools_jobs.clock import utcnow
from pastools_jobs.job_catalog import ALL_PROJECTS, BULK
from pastools_jobs.service import Submission
from workflows.params import BulkAction, BulkParams

router = APIRouter(
    prefix="/api/jobs/bulk",
    tags=["jobs"],
    responses=responses(400, 401, 403, 404, 413, 422, 503),
    dependencies=[authenticated],
)


class BulkPreviewOut(BaseModel):
    action: BulkAction
    matched: int
    """Jobs the filter matches (that the caller sees)."""
    would_change: int
    """Of those, the ones whose status the action changes today."""
    sample: list[JobOut]
    """The newest of those, at most 10."""


@router.post("/preview", response_model=BulkPreviewOut)
async def preview_bulk(
    params: Annotated[BulkParams, Body()],
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> BulkPreviewOut:
    """What a bulk action would do, without doing it (the action's role is needed)."""
    scoped = authorized(params, principal)
    preview = await service.preview_bulk(scoped)
    now = utcnow()
    return BulkPreviewOut(
        action=scoped.action,
        matched=preview.matched,
        would_change=preview.would_change,
        sample=[job_out(job, settings, now) for job in preview.sample],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    responses=for_submission,
)
async def start_bulk(
    params: Annotated[BulkParams, Body()],
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Start the action as a `bulk` job: cancel and retry need the operator role, delete
    (finished jobs only) admin; its result counts the jobs changed, skipped and failed."""
    scoped = authorized(params, principal)
    submitted = await service.submit(
        Submission(
            type=BULK.name,
            project_id=scoped.filter.project_id or ALL_PROJECTS,
            params=scoped.model_dump(mode="json"),
            idempotency_key=idempotency_key,
            scope=principal.project_id,
            actor=principal.actor,
            reason=scoped.reason,
            audited_as=AuditAction.BULK_START,
            audit_details=scoped.model_dump(mode="json", include={"action", "filter"}),
        )
    )
    return submitted_out(submitted, response, settings)
