"""A job's work runs in one of its project's running slots, when its project has a limit.

The workflow claims the slot through a local activity; while none is free it waits on a
durable timer (backing off) or until a run that gives one back wakes it by signal, and
stays `queued`. The slot is given back however the work ends, cancellation included.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.slots import SlotActivities, SlotAnswer, SlotRequest
    from workflows.shielding import uncancellable

T = TypeVar("T")

RUNNING_SLOT_PATCH = "per-project-running-slots"
"""Runs begun before it claimed no slot; they replay so."""

SLOT_FREED_SIGNAL = "running_slot_freed"
"""Sent by a run that gave its slot back to the first runs waiting for one."""

_FIRST_WAIT = timedelta(seconds=1)
_LONGEST_WAIT = timedelta(seconds=30)
"""A waiting run asks again after these (doubling), unless woken first."""

_SLOT_TIMEOUT = timedelta(seconds=10)
_SLOT_POLICY = RetryPolicy(initial_interval=timedelta(milliseconds=200))
"""A claim retries until the database answers: the work may not start without it."""
_RELEASE_POLICY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


class RunningSlotHolder:
    """Mixed into the job workflow: the wake-up signal and the slot around its work."""

    _slot_freed = False

    @workflow.signal(name=SLOT_FREED_SIGNAL)
    def running_slot_freed(self) -> None:
        self._slot_freed = True

    def stops_waiting_for_a_slot(self) -> bool:
        """Whether the run no longer wants a slot it waits for (a pause, in the job)."""
        return False

    @asynccontextmanager
    async def running_slot(self, project_id: str) -> AsyncIterator[bool]:
        """Hold one of the project's running slots for the body, once one is free; the
        body is told False if the run stopped waiting (`stops_waiting_for_a_slot`)."""
        if not workflow.patched(RUNNING_SLOT_PATCH):
            yield True
            return
        info = workflow.info()
        request = SlotRequest(job_id=info.workflow_id, run_id=info.run_id, project_id=project_id)
        recorded = False
        try:
            wait = _FIRST_WAIT
            while True:
                answer = await _claim(request)
                recorded = recorded or answer.recorded
                if answer.granted or self.stops_waiting_for_a_slot():
                    break
                await self._until_woken(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
            yield answer.granted
        finally:
            if recorded:
                await uncancellable(_release(request))

    async def _until_woken(self, wait: timedelta) -> None:
        self._slot_freed = False
        with suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._slot_freed or self.stops_waiting_for_a_slot(), timeout=wait
            )


async def _claim(request: SlotRequest) -> SlotAnswer:
    return await workflow.execute_local_activity_method(
        SlotActivities.claim_running_slot,
        request,
        start_to_close_timeout=_SLOT_TIMEOUT,
        retry_policy=_SLOT_POLICY,
    )


async def _release(request: SlotRequest) -> None:
    """Give the slot back, then wake the runs that may take it. A release that fails for
    good is left to the next claim, which reclaims rows of runs that have ended."""
    try:
        woken = await workflow.execute_local_activity_method(
            SlotActivities.release_running_slot,
            request,
            start_to_close_timeout=_SLOT_TIMEOUT,
            retry_policy=_RELEASE_POLICY,
        )
    except FailureError as failure:
        workflow.logger.warning("running slot not released, left to reclaiming: %s", failure)
        return
    for run in woken:
        handle = workflow.get_external_workflow_handle(run.job_id, run_id=run.run_id)
        with suppress(FailureError):  # it ended meanwhile: nothing to wake
            await handle.signal(SLOT_FREED_SIGNAL)
