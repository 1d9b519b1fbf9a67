"""The job state machine and the failures a user can act on.

Pure logic shared by the API, the mirror and the workflows: no I/O here.
"""

import re
from enum import StrEnum

from pydantic import ValidationError


class JobStatus(StrEnum):
    """The five statuses of the original jobs module, as users see them."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
CANCELLABLE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
RETRYABLE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})

# Within one attempt a job only moves forward; a finished attempt never changes again.
_RANK = {JobStatus.QUEUED: 0, JobStatus.RUNNING: 1}


def advances(current: JobStatus, observed: JobStatus) -> bool:
    """Whether an observation of the same attempt is newer than what the table holds.

    Temporal's visibility and the workflow's own reports can arrive out of order;
    the mirror applies only observations that move an attempt forward.
    """
    if current.is_terminal:
        return False
    if observed.is_terminal:
        return True
    return _RANK[observed] > _RANK[current]


class JobError(Exception):
    """A failure of a request about jobs that the caller can understand and act on."""

    title = "Job request failed"
    errors: list[dict[str, str]] | None = None
    """The fields at fault, as a 422 of the API's own schema lists them."""


class JobNotFound(JobError):
    title = "Job not found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"There is no job with id '{job_id}'.")
        self.job_id = job_id


class IllegalTransition(JobError):
    title = "Illegal job transition"

    def __init__(self, job_id: str, status: JobStatus, action: str, allowed: frozenset[JobStatus]):
        names = ", ".join(sorted(allowed))
        super().__init__(f"Job '{job_id}' is {status}; it can be {action} only when it is {names}.")
        self.job_id = job_id
        self.status = status


class ProjectNotFound(JobError):
    title = "Not found"

    def __init__(self, project_id: str, key: str | None = None) -> None:
        what = (
            f"no record '{key}' in project '{project_id}'"
            if key
            else (f"no project '{project_id}'")
        )
        super().__init__(f"There is {what}.")


class ArtifactNotFound(JobError):
    title = "Artifact not found"

    def __init__(self, job_id: str, name: str) -> None:
        super().__init__(f"Job '{job_id}' has no artifact named '{name}'.")


class ProjectExists(JobError):
    title = "Project exists"

    def __init__(self, project_id: str) -> None:
        super().__init__(f"A project with id '{project_id}' exists already.")


class PayloadTooLarge(JobError):
    title = "Request body too large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"The request body is larger than the limit of {max_bytes} bytes.")


class UnsafeSource(JobError):
    """An import source that leads outside the import directory."""

    title = "Invalid import source"


class SourceNotFound(UnsafeSource):
    title = "Import source not found"

    def __init__(self, source: str) -> None:
        super().__init__(
            f"Import source '{source}' does not exist among the project's import files."
        )


class InvalidJobInput(JobError):
    title = "Invalid job input"


class InvalidParameters(InvalidJobInput):
    """Parameters that a submission of the job type would not pass either."""

    title = "Invalid job parameters"

    def __init__(self, job_type: str, error: ValidationError) -> None:
        super().__init__(f"The parameters do not fit a {job_type} job.")
        self.errors = [
            {"field": ".".join(["params", *map(str, e["loc"])]), "message": e["msg"]}
            for e in error.errors()
        ]


PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
"""What a new project's id may be. It names directories, URLs, search attributes and
command-line arguments, so it starts with a letter or digit: never `.`, `..` or an
option's `-`. Ids of projects created before this rule are still looked up as they are."""


class InvalidProjectId(InvalidJobInput):
    title = "Invalid project id"

    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"'{project_id}' is not a valid project id: it must match {PROJECT_ID_PATTERN} "
            "(a letter or digit, then at most 199 letters, digits, '_', '.', ':' or '-')."
        )


def check_new_project_id(project_id: str) -> None:
    if re.fullmatch(PROJECT_ID_PATTERN, project_id) is None:
        raise InvalidProjectId(project_id)


class IdempotencyKeyReused(JobError):
    title = "Idempotency key reused"

    def __init__(self, project_id: str, key: str) -> None:
        super().__init__(
            f"The Idempotency-Key '{key}' was used in project '{project_id}' for a different "
            "request; send a new key with a new request."
        )


class TemporalUnavailable(JobError):
    title = "Temporal is unavailable"

    def __init__(self, detail: str = "The Temporal server cannot be reached; try again later."):
        super().__init__(detail)


class StorageUnavailable(JobError):
    """The object store cannot be reached or is overloaded: it passes, retry later."""

    title = "File storage is unavailable"


class StorageMisconfigured(JobError):
    """The store answers but refuses us: credentials or bucket are wrong."""

    title = "File storage is misconfigured"


class NotAuthenticated(JobError):
    title = "Not authenticated"

    def __init__(self, detail: str = "A valid API token is required.") -> None:
        super().__init__(detail)


class Forbidden(JobError):
    title = "Forbidden"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class WebhookNotFound(JobError):
    title = "Webhook not found"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"There is no webhook with id '{webhook_id}'.")


class UnsafeWebhookUrl(JobError):
    """A webhook URL the platform will not call: wrong scheme, credentials in it, or an
    address inside the platform's own networks (SSRF), after DNS resolution."""

    title = "Webhook URL refused"


class UnresolvableWebhookHost(UnsafeWebhookUrl):
    """A host name DNS does not resolve: refused at creation, retried at delivery (DNS
    may be down for a moment)."""


class ScheduleNotFound(JobError):
    title = "Schedule not found"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"There is no schedule with id '{schedule_id}'.")


class ScheduleExists(JobError):
    title = "Schedule exists"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"The project has a schedule with id '{schedule_id}' already.")


class InvalidSchedule(InvalidJobInput):
    """A schedule Temporal refuses: a cron expression or time zone it cannot read."""

    title = "Invalid schedule"
