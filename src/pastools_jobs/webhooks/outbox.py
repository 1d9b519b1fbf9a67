"""A job's end becomes deliveries in the very transaction that ends its row (an outbox).

Whichever writer ends a row (the workflow's record step, the reconciler for a terminate
or a timeout, `pastools doctor --fix`, an unstarted row ended) moves it through
`mirror.apply._move_open_row`, which calls `enqueue_job_event` once per move to a final
status: the event is written exactly once, and only if the move commits. A row restated
to another final status (Temporal closed its run otherwise than the row said) moves
again, so it emits its new event too: receivers then hear both, the later one right.
"""

import uuid
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from pastools_jobs.clock import utcnow
from pastools_jobs.db.models import Job, Webhook, WebhookDelivery
from pastools_jobs.domain import JobStatus
from pastools_jobs.webhooks.deliveries import DeliveryStatus
from pastools_jobs.webhooks.events import (
    EventError,
    EventJob,
    WebhookFormat,
    body,
    event_of,
)

_HOOKS_OF_PROJECT = select(Webhook.id, Webhook.events, Webhook.format).where(
    Webhook.project_id == bindparam("hooks_project_id"), Webhook.enabled.is_(True)
)
"""Built once: this runs at every job's end, and costs one indexed read when the project
has no webhook (the common case, and the throughput benchmark's path)."""

_ENDED_JOB = select(
    Job.id,
    Job.type,
    Job.project_id,
    Job.status,
    Job.error_type,
    Job.error_message,
    Job.result,
    Job.created_at,
    Job.completed_at,
    Job.attempt,
).where(Job.id == bindparam("ended_job_id"))


def new_delivery_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def enqueue_job_event(
    connection: Connection, job_id: str, project_id: str, job_type: str, status: JobStatus
) -> int:
    """Write a delivery for each of the project's enabled webhooks that wants this job's
    end; how many were written."""
    hooks = connection.execute(_HOOKS_OF_PROJECT, {"hooks_project_id": project_id}).all()
    if not hooks:
        return 0
    event = event_of(job_type, status)
    wanted = [hook for hook in hooks if event in hook.events]
    if not wanted:
        return 0
    job = _event_job(connection, job_id)
    if job is None:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": new_delivery_id(),
            "webhook_id": hook.id,
            "event": event,
            "job_id": job_id,
            "payload": body(event, job, WebhookFormat(hook.format)),
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "created_at": now,
        }
        for hook in wanted
    ]
    connection.execute(insert(WebhookDelivery), rows)
    return len(rows)


def _event_job(connection: Connection, job_id: str) -> EventJob | None:
    """The row as the move just left it (same transaction)."""
    row = connection.execute(_ENDED_JOB, {"ended_job_id": job_id}).first()
    if row is None:
        return None
    error = EventError(type=row.error_type, message=row.error_message) if row.error_type else None
    return EventJob(
        id=row.id,
        type=row.type,
        project_id=row.project_id,
        status=JobStatus(row.status),
        error=error,
        result=row.result,
        created_at=row.created_at,
        completed_at=row.completed_at,
        attempt=row.attempt,
    )
