"""How a failed attempt is described to the user.

Both writers of a job's row need it: the workflow, when its work fails, and the mirror,
when it reads a failure from Temporal's history. It lives here, outside both, so the
mirror does not import workflow code to describe what went wrong.
"""

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from pastools_jobs.contracts import FailureInfo


def describe_failure(error: BaseException) -> FailureInfo:
    """The failure of an attempt in words a user understands."""
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        return FailureInfo(
            type=cause.type or "ApplicationError", message=cause.message, details=details
        )
    if isinstance(cause, TimeoutError):
        step = error.activity_type if isinstance(error, ActivityError) else "work"
        return FailureInfo(
            type="ActivityTimeout",
            message=f"The '{step}' step stopped responding ({_timeout_kind(cause)} timeout) "
            "and ran out of retries.",
        )
    return FailureInfo(type=type(cause).__name__, message=str(cause) or "The job failed.")


def _timeout_kind(timeout: TimeoutError) -> str:
    return timeout.type.name.lower().replace("_", "-") if timeout.type else "unknown"
