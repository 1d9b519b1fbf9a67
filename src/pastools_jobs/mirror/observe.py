"""Reading the truth about one job from Temporal: describe, plus its start and close events.

This is how the mirror learns what no workflow code reports: a terminate, a timeout,
a workflow started from the CLI while nothing was watching.
"""

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHistoryEventFilterType,
)
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import FailureInfo, JobEvent, JobRequest
from pastools_jobs.domain import JobStatus
from pastools_jobs.failures import describe_failure
from pastools_jobs.job_catalog import SPEC_BY_WORKFLOW_NAME
from pastools_jobs.mirror.listing import closed_status

_CANCELLED = FailureInfo(type="Cancelled", message="The job was cancelled.")


async def observe_job(client: Client, job_id: str, run_id: str | None = None) -> JobEvent | None:
    """The job's current state as an event; None if Temporal has no such job workflow."""
    handle = client.get_workflow_handle(job_id, run_id=run_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    spec = SPEC_BY_WORKFLOW_NAME.get(description.workflow_type)
    if spec is None or description.status is None:
        return None
    handle = client.get_workflow_handle(job_id, run_id=description.run_id)
    request = await _request(client, handle.fetch_history_events(page_size=1))
    status = closed_status(description.status)
    event = JobEvent(
        job_id=job_id,
        run_id=description.run_id,
        job_type=spec.name,
        project_id=request.project_id,
        params=request.params,
        status=status or _open_status(description),
        at=description.close_time or utcnow(),
        created_at=description.start_time,
        schedule_id=request.schedule_id,
    )
    if status is None:
        return event
    close = await anext(
        aiter(
            handle.fetch_history_events(
                event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
            )
        )
    )
    await _describe_close(client, close, event)
    return event


def _open_status(description: WorkflowExecutionDescription) -> JobStatus:
    """A workflow no worker has picked up yet is, to a user, still queued."""
    started = description.history_length > 2 or description.raw_description.pending_activities
    return JobStatus.RUNNING if started else JobStatus.QUEUED


async def _request(client: Client, events: Any) -> JobRequest:
    first: HistoryEvent = await anext(aiter(events))
    payloads = first.workflow_execution_started_event_attributes.input.payloads
    try:
        [request] = await client.data_converter.decode(payloads, [JobRequest])
        return request  # type: ignore[no-any-return]
    except Exception:
        # Started from outside with input we cannot read: keep what the row needs.
        return JobRequest(project_id="unknown")


async def _describe_close(client: Client, close: HistoryEvent, event: JobEvent) -> None:
    if close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        payloads = close.workflow_execution_completed_event_attributes.result.payloads
        [event.result] = await client.data_converter.decode(payloads, [dict[str, Any]])
    elif close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = close.workflow_execution_failed_event_attributes.failure
        event.error = describe_failure(await client.data_converter.decode_failure(failure))
    elif close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        event.error = _CANCELLED
    elif close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        attributes = close.workflow_execution_terminated_event_attributes
        event.error = FailureInfo(
            type="Terminated",
            message="Terminated from outside the platform: "
            f"{attributes.reason or 'no reason given'}.",
            details={"identity": attributes.identity} if attributes.identity else None,
        )
    elif close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        event.error = FailureInfo(
            type="TimedOut",
            message="The job ran past its time limit and was stopped by Temporal.",
        )
