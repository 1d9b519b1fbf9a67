"""What crosses the Temporal boundary: workflow input, mirror events, heartbeats.

These models travel through Temporal's payloads (the Pydantic data converter) and
are imported by workflow code, so they hold data only: no I/O, no clocks.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from pastools_jobs.domain import JobStatus

JOB_TYPE = SearchAttributeKey.for_keyword("JobType")
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")
JOB_PROGRESS = SearchAttributeKey.for_int("JobProgress")
JOB_PAUSED = SearchAttributeKey.for_bool("JobPaused")
"""True while the job is paused; unset (or false) otherwise."""

SEARCH_ATTRIBUTES: dict[str, str] = {
    JOB_TYPE.name: "Keyword",
    JOB_STATUS.name: "Keyword",
    PROJECT_ID.name: "Keyword",
    JOB_PROGRESS.name: "Int",
    JOB_PAUSED.name: "Bool",
}


def queued_attributes(
    job_type: str, project_id: str, *, paused: bool = False
) -> TypedSearchAttributes:
    """The search attributes a job the API submits starts with (paused: held at submission,
    `JobRequest.start_paused`)."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(JOB_TYPE, job_type),
        SearchAttributePair(JOB_STATUS, JobStatus.QUEUED.value),
        SearchAttributePair(PROJECT_ID, project_id),
        SearchAttributePair(JOB_PROGRESS, 0),
    ]
    if paused:
        pairs.append(SearchAttributePair(JOB_PAUSED, True))
    return TypedSearchAttributes(pairs)


PROGRESS_SIGNAL = "report_progress"
"""Signal by which an activity tells its workflow the percentage, for the JobProgress attribute."""


RETRY_SIGNAL = "retry"
"""Signal-with-start of a job's new run after it failed or was cancelled: the run's own
history then says who retried it and why."""


class RetryRequest(BaseModel):
    """The retry signal's input: who asked (an actor's label, e.g. `token 1f2e (alice)`),
    through what, and the reason they gave."""

    model_config = ConfigDict(extra="forbid")

    actor: str = Field(max_length=500)
    channel: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=1000)
    retry_id: str | None = Field(default=None, max_length=64)
    """Unique per retry: the platform knows its own retry again in a run it finds open
    (a first request that started the run, whose answer was lost)."""


PAUSE_SIGNAL = "pause"
"""Stop the job's work at its next checkpoint and wait; `temporal workflow signal --name
pause` sends it too, with or without a `PauseRequest` as input."""

RESUME_SIGNAL = "resume"
"""Go on from where the pause stopped the work."""

PAUSING_QUERY = "pausing"
"""Whether the job wants its work stopped for a pause: asked by a work activity that is
told to stop, to know whether it stops for good (a cancel) or hands over its checkpoint."""


class PauseRequest(BaseModel):
    """Who pauses or resumes a job and why; every field is optional, so that a signal sent
    by hand without input counts too."""

    actor: str | None = Field(default=None, max_length=500)
    channel: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, max_length=1000)


class JobRequest(BaseModel):
    """Input of every job workflow; `temporal workflow start --input` takes the same JSON."""

    model_config = ConfigDict(extra="forbid")

    project_id: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    row_exists: bool = False
    """The API wrote the job's row before starting the workflow, which then leaves the row
    to its work's first progress report. A workflow started from outside (the temporal
    CLI) records itself at its start instead, which creates the row at once."""
    scope: str | None = None
    """The one project the submitter sees (a viewer's or operator's token), whose work may
    read no other project's data; None for one who sees all (an admin, the temporal CLI)."""
    attributes_set: bool = False
    """The API started the workflow with all its search attributes (JobStatus `queued`):
    JobStatus turns `running` with the work's first progress signal, as the row does with
    its first report, instead of at the workflow's start."""
    start_paused: bool = False
    """Submitted while its project or type was paused (a hold): the job waits, paused,
    before its work starts, until it is resumed."""
    schedule_id: str | None = Field(default=None, max_length=100)
    """The project's schedule that starts this workflow (`schedules/`): the row the run
    records of itself says so."""


class FailureInfo(BaseModel):
    """Why an attempt failed, in words a user understands, plus machine-readable details."""

    type: str
    message: str
    details: Any = None


class JobEvent(BaseModel):
    """A state change of one run of a job, as the workflow or Temporal's history tells it."""

    job_id: str
    run_id: str
    job_type: str
    project_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus
    at: datetime
    created_at: datetime
    started_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: FailureInfo | None = None
    schedule_id: str | None = None
    """The schedule whose run this is (`JobRequest.schedule_id`), for a row created from it."""


class Progress(BaseModel):
    """Heartbeat details: what the activity has done, and where a retry resumes."""

    done: int = 0
    total: int | None = None
    message: str = ""
    checkpoint: Any = None

    @property
    def percent(self) -> int:
        if not self.total:
            return 0
        return max(0, min(100, self.done * 100 // self.total))


class PauseChange(BaseModel):
    """A run's work stopped for a pause, or went on after one, as the workflow tells the
    table: `paused_at` is when it stopped, None once it goes on."""

    job_id: str
    run_id: str
    paused_at: datetime | None


class Work(BaseModel):
    """Input of a job type's long activity: each type's work model extends it."""

    resume_from: Progress | None = None
    """Where a pause stopped the work, for the work started on resume; None for the first
    (a retried attempt resumes from its predecessor's last heartbeat instead)."""
