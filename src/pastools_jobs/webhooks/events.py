"""What a webhook is told: the events, and the two body formats (Standard and Slack)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from pastools_jobs.domain import JobStatus

BULK_JOB_TYPE = "bulk"


class WebhookEvent(StrEnum):
    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    BULK_FINISHED = "bulk.finished"


class WebhookFormat(StrEnum):
    STANDARD = "standard"
    """`{type, timestamp, data}` as Standard Webhooks suggests, `data` the job."""
    SLACK = "slack"
    """`{text}`: what a Slack incoming webhook (or Mattermost, Teams' Slack mode) posts."""


def event_of(job_type: str, status: JobStatus) -> WebhookEvent:
    """A bulk job's end is one event whatever its status: the result says what it did."""
    if job_type == BULK_JOB_TYPE:
        return WebhookEvent.BULK_FINISHED
    return WebhookEvent(f"job.{status}")


class EventError(BaseModel):
    type: str
    message: str | None


class EventJob(BaseModel):
    """The job as an event shows it: its state when it ended."""

    id: str
    type: str
    project_id: str
    status: JobStatus
    error: EventError | None
    result: dict[str, Any] | None
    created_at: datetime
    completed_at: datetime | None
    attempt: int


class StandardBody(BaseModel):
    type: WebhookEvent
    timestamp: datetime
    data: EventJob


class SlackBody(BaseModel):
    text: str


def body(event: WebhookEvent, job: EventJob, format: WebhookFormat) -> str:
    """The exact JSON a delivery sends, on every attempt (it is signed as these bytes)."""
    if format is WebhookFormat.SLACK:
        return SlackBody(text=slack_text(event, job)).model_dump_json()
    timestamp = job.completed_at or job.created_at
    return StandardBody(type=event, timestamp=timestamp, data=job).model_dump_json()


def slack_text(event: WebhookEvent, job: EventJob) -> str:
    """One line a person reads in a channel."""
    what = f"job {job.id} ({job.type}, project {job.project_id})"
    if event is WebhookEvent.BULK_FINISHED:
        line = f"bulk {what} finished: {job.status}"
        if job.result is not None:
            counts = [
                f"{job.result[k]} {k}"
                for k in ("matched", "changed", "skipped", "failed")
                if k in job.result
            ]
            line += f" ({', '.join(counts)})" if counts else ""
    else:
        line = f"{what} {job.status}"
    if job.error is not None:
        line += f": {job.error.type}"
        if job.error.message:
            line += f": {job.error.message}"
    return line
