"""/api/projects/{project_id}/schedules: a project's recurring jobs (Temporal Schedules)."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import ScheduleServiceDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import ProjectId
from pastools_jobs.auth.principal import Role
from pastools_jobs.schedules.schemas import (
    SCHEDULE_ID_PATTERN,
    ScheduleChange,
    ScheduleCreate,
    ScheduleNoteRequest,
    ScheduleOut,
)

router = APIRouter(
    prefix="/api/projects/{project_id}/schedules",
    tags=["schedules"],
    responses=responses(401, 404, 422, 503),
    dependencies=[authenticated],
)
for_change = responses(400, 403, 413)

ScheduleId = Annotated[str, Path(pattern=SCHEDULE_ID_PATTERN)]
NoteBody = Annotated[ScheduleNoteRequest | None, Body()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleOut,
    responses={**for_change, **responses(409)},
)
async def create_schedule(
    project_id: ProjectId,
    body: ScheduleCreate,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
) -> ScheduleOut:
    """A recurring job (operator): its type and parameters are checked as a submission's
    (422), its cron expressions and time zone by Temporal (422 with its reason)."""
    principal.require_project(project_id, Role.OPERATOR)
    return await schedules.create(project_id, body, principal.actor, principal.project_id)


@router.get("", response_model=list[ScheduleOut])
async def list_schedules(
    project_id: ProjectId, schedules: ScheduleServiceDep, principal: PrincipalDep
) -> list[ScheduleOut]:
    """The project's schedules by id. Read from Temporal's visibility, which may take a
    moment to list a new schedule."""
    principal.require_project(project_id)
    return await schedules.of_project(project_id)


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
) -> ScheduleOut:
    """The schedule, its next run times and its latest runs with their jobs' status."""
    principal.require_project(project_id)
    return await schedules.get(project_id, schedule_id)


@router.patch("/{schedule_id}", response_model=ScheduleOut, responses=for_change)
async def update_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    body: ScheduleChange,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
) -> ScheduleOut:
    """Change the fields given (operator); runs already started keep what they started with."""
    principal.require_project(project_id, Role.OPERATOR)
    return await schedules.update(
        project_id, schedule_id, body, principal.actor, principal.project_id
    )


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=for_change)
async def delete_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
) -> Response:
    """Remove the schedule (operator); its jobs stay, and a run going on runs to its end."""
    principal.require_project(project_id, Role.OPERATOR)
    await schedules.delete(project_id, schedule_id, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut, responses=for_change)
async def pause_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
    body: NoteBody = None,
) -> ScheduleOut:
    """No runs until unpaused (operator); the optional `note` says why."""
    principal.require_project(project_id, Role.OPERATOR)
    note = body.note if body else None
    return await schedules.pause(project_id, schedule_id, note, principal.actor)


@router.post("/{schedule_id}/unpause", response_model=ScheduleOut, responses=for_change)
async def unpause_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
    body: NoteBody = None,
) -> ScheduleOut:
    """Runs are due again (operator); runs missed while paused are not made up."""
    principal.require_project(project_id, Role.OPERATOR)
    note = body.note if body else None
    return await schedules.unpause(project_id, schedule_id, note, principal.actor)


@router.post("/{schedule_id}/trigger", response_model=ScheduleOut, responses=for_change)
async def trigger_schedule(
    project_id: ProjectId,
    schedule_id: ScheduleId,
    schedules: ScheduleServiceDep,
    principal: PrincipalDep,
) -> ScheduleOut:
    """A run now (operator), under the schedule's overlap policy: with `skip` none starts
    while a run is going (`skipped_for_overlap` counts it)."""
    principal.require_project(project_id, Role.OPERATOR)
    return await schedules.trigger(project_id, schedule_id, principal.actor)
