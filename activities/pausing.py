"""A job's work stopped for a pause hands its checkpoint back to the workflow.

A pause reaches the work as an activity cancel (Temporal's only way to tell a running
activity anything), at its next heartbeat; the work stops there as it does for any cancel,
its last heartbeat holding the last whole batch. Only the workflow knows whether it asked
for the stop because of a pause: the activity asks it (`PAUSING_QUERY`) and, if so, fails
with `WorkPaused`, whose details are that last heartbeat's checkpoint, so that the work
started on resume goes on from there (`contracts.Work.resume_from`). A cancel of the job
stays a cancel, as does any stop whose reason cannot be learnt.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from pastools_jobs.contracts import PAUSING_QUERY

log = logging.getLogger(__name__)

WORK_PAUSED = "WorkPaused"
"""The failure type by which stopped work hands its checkpoint to its workflow."""

_ASK_TIMEOUT = timedelta(seconds=5)


class PauseHandOver(Interceptor):
    """Worker interceptor: every activity of a job workflow may be stopped for a pause."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StoppableWork(next)


class _Heartbeats(ActivityOutboundInterceptor):
    """Remembers the activity's last heartbeat details: its checkpoint."""

    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        super().__init__(next)
        self.last: tuple[Any, ...] = ()

    def heartbeat(self, *details: Any) -> None:
        if details:
            self.last = details
        super().heartbeat(*details)


class _StoppableWork(ActivityInboundInterceptor):
    _heartbeats: _Heartbeats | None = None

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._heartbeats = _Heartbeats(outbound)
        super().init(self._heartbeats)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if self._heartbeats is not None:
            # A retried attempt starts from its predecessor's last heartbeat.
            self._heartbeats.last = tuple(activity.info().heartbeat_details)
        try:
            return await super().execute_activity(input)
        except asyncio.CancelledError:
            if not await _stopped_for_pause():
                raise
            last = self._heartbeats.last if self._heartbeats else ()
            raise ApplicationError(
                "The work stopped at its last checkpoint for a pause.",
                *last,
                type=WORK_PAUSED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            ) from None


async def _stopped_for_pause() -> bool:
    """Whether the cancel is the workflow's for a pause (it says so while it waits for the
    work to stop). A cancel of the job, a worker shutdown or a question that cannot be
    answered count as no pause."""
    details = activity.cancellation_details()
    if details is None or not details.cancel_requested:
        return False
    info = activity.info()
    if not info.workflow_id or info.is_local:
        return False  # a local activity is never a job's work: it is cut short by a cancel
    handle = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
    try:
        return bool(await handle.query(PAUSING_QUERY, rpc_timeout=_ASK_TIMEOUT))
    except (TimeoutError, RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
        log.warning("could not ask job %s why its work stops: %s", info.workflow_id, error)
        return False
