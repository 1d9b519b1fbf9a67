"""Starting the workflow of each delivery the outbox wrote: the mirror leader's job.

Only the lease holder dispatches, every sweep, a bounded batch at a time. A delivery is
stamped `dispatched_at` once its workflow is started (or found started: the workflow id
is the delivery's, so a second start is refused and that is success). While Temporal is
down the rows wait, and the next sweep tries again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.temporal import is_unavailable
from pastools_jobs.webhooks import deliveries
from pastools_jobs.webhooks.contracts import (
    DELIVERY_WORKFLOW,
    WebhookDeliveryRequest,
    delivery_workflow_id,
)

log = logging.getLogger(__name__)

BATCH = 100
"""Deliveries started per sweep at most: a burst of job ends is spread over sweeps."""


class DeliveryDispatcher:
    def __init__(self, db: Database, client: Client, settings: Settings) -> None:
        self._db = db
        self._client = client
        self._settings = settings

    async def dispatch(self, may_work: Callable[[], bool] = lambda: True) -> int:
        """Start the workflows of a batch of undispatched deliveries; how many started."""
        pending = await asyncio.to_thread(self._undispatched)
        started: list[str] = []
        try:
            for delivery_id in pending:
                if not may_work():
                    break
                try:
                    await self._start(delivery_id)
                except RPCError as error:
                    if is_unavailable(error):
                        raise
                    # Refused for good (should not happen): logged, and tried next sweep.
                    log.error("could not start delivery %s: %s", delivery_id, error)
                    continue
                started.append(delivery_id)
        finally:
            if started:
                await asyncio.to_thread(self._mark, started)
        return len(started)

    async def _start(self, delivery_id: str) -> None:
        settings = self._settings
        request = WebhookDeliveryRequest(
            delivery_id=delivery_id,
            timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            retry_initial_seconds=settings.webhook_retry_initial_seconds,
        )
        # Already started: by another leader, or by a sweep whose stamp was lost; never
        # again once it closed (a failed delivery is not sent anew).
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                DELIVERY_WORKFLOW,
                request,
                id=delivery_workflow_id(delivery_id),
                task_queue=settings.webhook_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

    def _undispatched(self) -> list[str]:
        with self._db.reading() as connection:
            return deliveries.undispatched(connection, BATCH)

    def _mark(self, ids: list[str]) -> None:
        with self._db.writing() as connection:
            deliveries.mark_dispatched(connection, ids)
