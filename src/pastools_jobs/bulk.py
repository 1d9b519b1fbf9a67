"""Bulk actions: which jobs a filter matches, which of them an action would change, and
who may take it. The API previews and starts them; the `bulk` job's activity acts.

An action needs the role its single form needs (cancel and retry: operator; delete,
which only cleanup does otherwise: admin) over the caller's projects: a caller who sees
one project acts on that project's jobs alone, whatever the filter says.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from pastools_jobs.auth.principal import Principal, Role
from pastools_jobs.db.models import Job
from pastools_jobs.domain import (
    CANCELLABLE_STATUSES,
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    InvalidJobInput,
    JobStatus,
)
from pastools_jobs.job_catalog import SPEC_BY_TYPE
from pastools_jobs.param_filters import QUERY_PREFIX, parse_param_filters
from pastools_jobs.repository import JobFilter, count_jobs, list_jobs
from workflows.params import BulkAction, BulkFilter, BulkParams

CHANGEABLE: dict[BulkAction, frozenset[JobStatus]] = {
    "cancel": CANCELLABLE_STATUSES,
    "retry": RETRYABLE_STATUSES,
    "delete": TERMINAL_STATUSES,
    "pause": CANCELLABLE_STATUSES,
    "resume": CANCELLABLE_STATUSES,
}
"""The statuses from which each action changes a job; the others are skipped."""

PAUSED_BEFORE: dict[BulkAction, bool] = {"pause": False, "resume": True}
"""Pause goes through the jobs not paused, resume through the paused ones, whatever the
filter says of pauses."""

ROLE_NEEDED: dict[BulkAction, Role] = {
    "cancel": Role.OPERATOR,
    "retry": Role.OPERATOR,
    "delete": Role.ADMIN,
    "pause": Role.OPERATOR,
    "resume": Role.OPERATOR,
}

SAMPLE_SIZE = 10


def authorized(params: BulkParams, principal: Principal) -> BulkParams:
    """`params` with its filter narrowed to the caller's project, if it sees only one;
    404 for a project it cannot see, 403 for an action its role does not allow, 422 for
    a filter that cannot be made."""
    project = principal.project_scope(params.filter.project_id)
    principal.require(ROLE_NEEDED[params.action])
    scoped = params.model_copy(
        update={"filter": params.filter.model_copy(update={"project_id": project})}
    )
    job_filter(scoped.filter)  # refused here, not when the job runs
    return scoped


def action_filter(params: BulkParams, *, excluded_id: str | None = None) -> JobFilter:
    """The jobs the action goes through: its filter's, narrowed as the action needs."""
    where = job_filter(params.filter, excluded_id=excluded_id)
    return replace(where, paused=PAUSED_BEFORE.get(params.action, where.paused))


def job_filter(bulk: BulkFilter, *, excluded_id: str | None = None) -> JobFilter:
    unknown = sorted(set(bulk.type) - set(SPEC_BY_TYPE))
    if unknown:
        raise InvalidJobInput(f"No job type is called {', '.join(map(repr, unknown))}.")
    created_from, created_to = _utc(bulk.created_from), _utc(bulk.created_to)
    if created_from and created_to and created_from > created_to:
        raise InvalidJobInput("created_from must not be later than created_to.")
    return JobFilter(
        statuses=bulk.status,
        types=bulk.type,
        project_id=bulk.project_id,
        created_from=created_from,
        created_to=created_to,
        id_contains=bulk.q or None,
        error_types=bulk.error_type,
        params=parse_param_filters(
            (f"{QUERY_PREFIX}{name}", value)
            for name, values in bulk.params.items()
            for value in values
        ),
        excluded_id=excluded_id,
        paused=bulk.paused,
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BulkPreview:
    matched: int
    would_change: int
    sample: list[Job]
    """The newest few that would change."""


def preview(session: Session, params: BulkParams) -> BulkPreview:
    where = job_filter(params.filter)
    allowed = CHANGEABLE[params.action]
    statuses = [s for s in where.statuses or JobStatus if s in allowed]
    changing = replace(action_filter(params), statuses=statuses)
    would_change = count_jobs(session, changing) if statuses else 0
    sample = list_jobs(session, changing, SAMPLE_SIZE, None).jobs if would_change else []
    return BulkPreview(count_jobs(session, where), would_change, sample)
