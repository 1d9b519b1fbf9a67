"""Request and response bodies, built from the job type registry.

Each job type contributes one submission model (its `type` literal and its
parameters model) and one job model (its `type` literal and its result model), so the
OpenAPI document lists every type's parameters and result.
"""

import logging
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from pastools_jobs.audit.trail import REASON_MAX_LENGTH
from pastools_jobs.config import Settings
from pastools_jobs.db.models import Job, JobAttempt, JobHold
from pastools_jobs.domain import PROJECT_ID_PATTERN, JobStatus
from pastools_jobs.holds import HoldKind, RunningJobs
from pastools_jobs.job_catalog import JOB_TYPES, SPEC_BY_TYPE
from pastools_jobs.job_spec import JobTypeSpec

log = logging.getLogger(__name__)

JobType = StrEnum("JobType", {spec.name.upper(): spec.name for spec in JOB_TYPES})  # type: ignore[misc]

ProjectId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""An id that names a project which may exist: lenient, so that projects created before
the rule for new ids (`NewProjectId`) stay reachable."""

NewProjectId = Annotated[
    str,
    Field(
        pattern=PROJECT_ID_PATTERN,
        description="A letter or digit, then at most 199 letters, digits, '_', '.', ':' or '-'.",
    ),
]

JobId = Annotated[str, Path(min_length=1, max_length=200)]
"""A job id in a route's path, for every route under /api/jobs/{job_id}."""

MAX_RUN_TIMEOUT_SECONDS = 7 * 24 * 3600


class SubmissionBase(BaseModel):
    """What every submission has; each job type adds its `type` literal and `params`."""

    model_config = ConfigDict(extra="forbid")

    type: str
    project_id: ProjectId
    params: BaseModel
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RUN_TIMEOUT_SECONDS,
        description="Stop the job (as failed) if it runs longer than this.",
    )
    priority: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="Temporal's priority key: 1 runs first, 5 last; unset: 3. Jobs of one "
        "priority share the workers fairly between projects.",
    )


def _submission_model(spec: JobTypeSpec[Any, Any]) -> type[SubmissionBase]:
    params: Any = spec.params_model
    try:
        params()
        params_field: Any = Field(default_factory=params, description=spec.description)
    except ValidationError:
        params_field = Field(description=spec.description)
    type_literal: Any = Literal[spec.name]
    return create_model(
        f"{spec.workflow_name}Submission",
        __base__=SubmissionBase,
        type=(type_literal, ...),
        params=(params, params_field),
    )


if TYPE_CHECKING:
    JobSubmission = SubmissionBase
else:
    JobSubmission = Annotated[
        Union[tuple(_submission_model(spec) for spec in JOB_TYPES if spec.submittable)],  # noqa: UP007
        Field(discriminator="type"),
    ]


class ProgressOut(BaseModel):
    done: int
    total: int | None
    percent: int
    message: str | None


class ErrorOut(BaseModel):
    type: str
    message: str
    details: Any = None


class AttemptOut(BaseModel):
    attempt: int
    status: JobStatus
    run_id: str | None
    error: ErrorOut | None
    started_at: datetime | None
    completed_at: datetime | None


class JobOutBase(BaseModel):
    """What every job has; each job type adds its `type` literal and `result`."""

    id: str
    type: str
    project_id: str
    status: JobStatus
    params: dict[str, Any]
    result: BaseModel | None
    attempt: int
    progress: ProgressOut
    error: ErrorOut | None
    cancel_requested: bool
    paused: bool = Field(
        description="Paused: its work stopped at a checkpoint (or has not started) and waits "
        "for a resume. The status stays `queued` or `running` meanwhile."
    )
    paused_at: datetime | None
    priority: int | None = Field(description="As submitted (1 first … 5 last); null: 3.")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    duration_seconds: float | None = Field(description="Run time so far, or of the whole run.")
    attempts: list[AttemptOut] = Field(description="Every attempt, the current one last.")
    workflow_url: str = Field(description="The job's workflow in the Temporal Web UI.")
    schedule_id: str | None = Field(
        default=None, description="The project's schedule this job is a run of, if any."
    )


def _job_model(spec: JobTypeSpec[Any, Any]) -> type[JobOutBase]:
    type_literal: Any = Literal[spec.name]
    result: Any = spec.result_model | None
    return create_model(
        f"{spec.workflow_name}Out",
        __base__=JobOutBase,
        type=(type_literal, ...),
        result=(result, Field(description="Once the job completed: what it did.")),
    )


_JOB_MODELS = {spec.name: _job_model(spec) for spec in JOB_TYPES}

if TYPE_CHECKING:
    JobOut = JobOutBase
else:
    JobOut = Annotated[Union[tuple(_JOB_MODELS.values())], Field(discriminator="type")]  # noqa: UP007


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class JobStatsOut(BaseModel):
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    paused: int = Field(description="Queued or running jobs that are paused.")


class BucketOut(BaseModel):
    start: datetime
    completed: int
    failed: int


class TimeseriesOut(BaseModel):
    bucket_seconds: int
    buckets: list[BucketOut]


Reason = Annotated[
    str | None,
    Field(
        max_length=REASON_MAX_LENGTH,
        description="Why; kept in the audit trail (and in Temporal's history for a cancel "
        "or retry).",
    ),
]


class JobActionRequest(BaseModel):
    """The optional body of a cancel, retry, pause or resume."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = None


class HoldRequest(BaseModel):
    """The optional body of a pause of a whole project or job type."""

    model_config = ConfigDict(extra="forbid")

    running: RunningJobs = Field(
        default="finish",
        description="Running jobs: let them `finish` (new and queued ones wait), or `pause` "
        "them at their next checkpoint too.",
    )
    reason: Reason = None


class HoldOut(BaseModel):
    kind: HoldKind
    target: str = Field(description="The project id or the job type.")
    running: RunningJobs
    reason: str | None
    created_by: str
    created_at: datetime


class HoldActionOut(BaseModel):
    hold: HoldOut | None = Field(description="The hold now in place; null once lifted.")
    bulk_job: JobOut = Field(
        description="The bulk job that pauses (or resumes) the jobs already there."
    )


def hold_out(row: JobHold) -> HoldOut:
    return HoldOut(
        kind=HoldKind(row.kind),
        target=row.target,
        running=row.running,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
    )


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_days: float = Field(gt=0, le=36_500, description="Age of finished jobs to delete.")


class CleanupOut(BaseModel):
    deleted: int


class JobLogLineOut(BaseModel):
    seq: int = Field(description="The line's number among all the job's lines, kept or not.")
    at: datetime
    level: Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
    message: str
    attempt: int = Field(description="The activity's attempt in its run: 2 and up after a retry.")
    run_id: str = Field(description="The job's run (a retry of the job is a new run).")


class JobLogOut(BaseModel):
    job_id: str
    lines: list[JobLogLineOut]
    dropped: int = Field(description="The job's oldest lines, no longer kept (past the cap).")
    next_after: int | None = Field(
        description="The `after` of the next page when this one is full; null when these are "
        "the last lines kept so far (follow a running job with the last line's seq)."
    )


def _error(type_: str | None, message: str | None, details: Any) -> ErrorOut | None:
    if type_ is None and message is None:
        return None
    return ErrorOut(type=type_ or "Error", message=message or "", details=details)


def _attempt(attempt: JobAttempt | Job) -> AttemptOut:
    return AttemptOut(
        attempt=attempt.attempt,
        status=JobStatus(attempt.status),
        run_id=attempt.run_id,
        error=_error(attempt.error_type, attempt.error_message, attempt.error_details),
        started_at=attempt.started_at,
        completed_at=attempt.completed_at,
    )


def job_out(job: Job, settings: Settings, now: datetime) -> JobOut:
    total = job.progress_total
    percent = min(100, job.progress_done * 100 // total) if total else 0
    if job.status == JobStatus.COMPLETED:
        percent = 100
    duration = None
    if job.started_at is not None:
        duration = ((job.completed_at or now) - job.started_at).total_seconds()
    spec = SPEC_BY_TYPE[job.type]
    return _JOB_MODELS[spec.name](
        id=job.id,
        type=job.type,
        project_id=job.project_id,
        status=JobStatus(job.status),
        params=job.params,
        result=_result(spec, job),
        attempt=job.attempt,
        progress=ProgressOut(
            done=job.progress_done, total=total, percent=percent, message=job.progress_message
        ),
        error=_error(job.error_type, job.error_message, job.error_details),
        cancel_requested=job.cancel_requested_at is not None,
        paused=job.paused_at is not None,
        paused_at=job.paused_at,
        priority=job.priority,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        updated_at=job.updated_at,
        duration_seconds=duration,
        attempts=[*map(_attempt, job.past_attempts), _attempt(job)],
        workflow_url=settings.workflow_url(job.id),
        schedule_id=job.schedule_id,
    )


def _result(spec: JobTypeSpec[Any, Any], job: Job) -> BaseModel | None:
    """The row's result as its type's model. One that no longer reads as it (a result
    model changed without defaults) is shown as none, and logged: one such row must not
    fail every page and feed it is on. The row keeps it as it was."""
    if job.result is None:
        return None
    try:
        result: BaseModel = spec.result_model.model_validate(job.result)
    except ValidationError as error:
        log.warning("job %s: its result does not read as %s: %s", job.id, spec.name, error)
        return None
    return result
