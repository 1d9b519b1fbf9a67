"""What people did to a job in Temporal itself — its CLI, its Web UI, another SDK
client — read from the job's workflow histories, with the identity and reason Temporal
recorded. The platform's own requests carry an identity of its own (`PLATFORM_IDENTITY`)
and are in the audit trail already, so they are left out here.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.contracts import PROGRESS_SIGNAL
from pastools_jobs.temporal import is_platform_identity, unavailable_as_domain_error


@dataclass(frozen=True)
class TemporalAction:
    at: datetime
    run_id: str
    action: str
    """`temporal.start`, `.cancel`, `.terminate`, `.signal` or `.reset`."""
    identity: str
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)


RUNS_READ = 20
"""A job's newest runs whose histories are read; older retries are not shown."""


async def temporal_actions(
    client: Client, job_id: str, run_ids: Sequence[str]
) -> list[TemporalAction]:
    """The outside actions on each of the job's (newest) runs, oldest first; the runs'
    histories are read side by side. A run whose history Temporal no longer keeps (past
    the namespace's retention) has none to show; Temporal out of reach raises
    `TemporalUnavailable`."""
    runs = list(dict.fromkeys(run_ids))[-RUNS_READ:]
    found = await asyncio.gather(*(_run_actions(client, job_id, run_id) for run_id in runs))
    return sorted((action for actions in found for action in actions), key=lambda a: a.at)


async def _run_actions(client: Client, job_id: str, run_id: str) -> list[TemporalAction]:
    handle = client.get_workflow_handle(job_id, run_id=run_id)
    found: list[TemporalAction] = []
    try:
        with unavailable_as_domain_error():
            async for event in handle.fetch_history_events():
                action = _outside_action(run_id, event)
                if action is not None:
                    found.append(action)
    except RPCError as error:
        if error.status is not RPCStatusCode.NOT_FOUND:
            raise
    return found


def _outside_action(run_id: str, event: HistoryEvent) -> TemporalAction | None:
    at = event.event_time.ToDatetime(tzinfo=UTC)
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        started = event.workflow_execution_started_event_attributes
        return _action(at, run_id, "temporal.start", started.identity, None)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
        cancel = event.workflow_execution_cancel_requested_event_attributes
        return _action(at, run_id, "temporal.cancel", cancel.identity, cancel.cause)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        terminated = event.workflow_execution_terminated_event_attributes
        return _action(at, run_id, "temporal.terminate", terminated.identity, terminated.reason)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        signal = event.workflow_execution_signaled_event_attributes
        if signal.signal_name == PROGRESS_SIGNAL:
            return None  # the work's own reports, whoever relays them
        details = {"signal": signal.signal_name}
        return _action(at, run_id, "temporal.signal", signal.identity, None, details)
    if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        failed = event.workflow_task_failed_event_attributes
        if failed.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
            return None
        details = {"base_run_id": failed.base_run_id, "new_run_id": failed.new_run_id}
        reason = failed.failure.message or None
        return _action(at, run_id, "temporal.reset", failed.identity, reason, details)
    return None


def _action(
    at: datetime,
    run_id: str,
    action: str,
    identity: str,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> TemporalAction | None:
    if is_platform_identity(identity):
        return None
    return TemporalAction(at, run_id, action, identity, reason or None, details or {})
