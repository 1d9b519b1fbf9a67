"""Which job an activity works for: the workflow id is the job id."""

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError


@dataclass(frozen=True)
class JobRun:
    job_id: str
    run_id: str


def current_job_run() -> JobRun:
    """The job and run of the running activity.

    An activity run outside a job workflow has no row to report to and no job to file
    artifacts under; it is refused, non-retryable, since no retry would find one."""
    info = activity.info()
    if not info.workflow_id or not info.workflow_run_id:
        raise ApplicationError(
            "Progress is reported and artifacts are written only by activities of a job workflow.",
            type="NoJob",
            non_retryable=True,
        )
    return JobRun(info.workflow_id, info.workflow_run_id)
