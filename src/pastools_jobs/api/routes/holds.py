"""Pausing a whole project or job type: /api/projects/{id}/pause|resume,
/api/job-types/{type}/pause|resume, and /api/holds to see which are paused."""

from typing import Annotated

from fastapi import APIRouter, Body, status

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import ServiceDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import (
    HoldActionOut,
    HoldOut,
    HoldRequest,
    JobActionRequest,
    JobType,
    ProjectId,
    hold_out,
    job_out,
)
from pastools_jobs.auth.principal import Principal, Role
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.domain import InvalidJobInput
from pastools_jobs.holds import Hold, HoldKind
from pastools_jobs.job_catalog import BULK
from pastools_jobs.service import JobService

router = APIRouter(
    prefix="/api",
    tags=["holds"],
    responses=responses(400, 401, 403, 404, 413, 422, 503),
    dependencies=[authenticated],
)


@router.get("/holds", response_model=list[HoldOut])
async def list_holds(service: ServiceDep, principal: PrincipalDep) -> list[HoldOut]:
    """The projects and job types that are paused (for a token of one project: its own,
    and every job type's)."""
    return [hold_out(row) for row in await service.holds(principal.project_scope(None))]


@router.post(
    "/projects/{project_id}/pause",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HoldActionOut,
)
async def pause_project(
    project_id: ProjectId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[HoldRequest | None, Body()] = None,
) -> HoldActionOut:
    """Pause a project: its new jobs start paused, its queued ones are paused, and its
    running ones finish (`running: "finish"`, the default) or pause at their next
    checkpoint (`"pause"`). Operators of the project may."""
    principal.require_project(project_id, Role.OPERATOR)
    return await _hold(service, settings, principal, Hold(HoldKind.PROJECT, project_id), body)


@router.post(
    "/projects/{project_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HoldActionOut,
)
async def resume_project(
    project_id: ProjectId,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> HoldActionOut:
    """Lift the project's pause and resume every paused job of it."""
    principal.require_project(project_id, Role.OPERATOR)
    return await _release(service, settings, principal, Hold(HoldKind.PROJECT, project_id), body)


@router.post(
    "/job-types/{job_type}/pause",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HoldActionOut,
)
async def pause_job_type(
    job_type: JobType,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[HoldRequest | None, Body()] = None,
) -> HoldActionOut:
    """Pause a job type in every project (admins): as a project's pause. Bulk jobs are
    how holds act: they cannot be held (422)."""
    principal.require(Role.ADMIN)
    if job_type == BULK.name:
        raise InvalidJobInput("Bulk jobs cannot be paused as a type: holds act through them.")
    return await _hold(service, settings, principal, Hold(HoldKind.TYPE, str(job_type)), body)


@router.post(
    "/job-types/{job_type}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HoldActionOut,
)
async def resume_job_type(
    job_type: JobType,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[JobActionRequest | None, Body()] = None,
) -> HoldActionOut:
    principal.require(Role.ADMIN)
    return await _release(service, settings, principal, Hold(HoldKind.TYPE, str(job_type)), body)


async def _hold(
    service: JobService,
    settings: Settings,
    principal: Principal,
    hold: Hold,
    body: HoldRequest | None,
) -> HoldActionOut:
    request = body or HoldRequest()
    row, bulk = await service.hold(hold, request.running, principal.actor, request.reason)
    return HoldActionOut(hold=hold_out(row), bulk_job=job_out(bulk.job, settings, utcnow()))


async def _release(
    service: JobService,
    settings: Settings,
    principal: Principal,
    hold: Hold,
    body: JobActionRequest | None,
) -> HoldActionOut:
    reason = body.reason if body else None
    bulk = await service.release(hold, principal.actor, reason)
    return HoldActionOut(hold=None, bulk_job=job_out(bulk.job, settings, utcnow()))
