"""Sending one webhook delivery: one request per attempt, each written in its log."""

import asyncio
from datetime import datetime
from typing import Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import ActivityGroup
from pastools_jobs.clock import utcnow
from pastools_jobs.domain import UnresolvableWebhookHost, UnsafeWebhookUrl
from pastools_jobs.webhooks import deliveries
from pastools_jobs.webhooks.addresses import check_url
from pastools_jobs.webhooks.deliveries import DeliveryStatus, Outgoing
from pastools_jobs.webhooks.sending import send

Outcome = Literal["delivered", "gone", "disabled", "failed"]

NOT_DELIVERED = "WebhookNotDelivered"
REFUSED = "UnsafeWebhookUrl"


class WebhookActivities(ActivityGroup):
    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery_id: str) -> Outcome:
        """One attempt. A receiver's error or silence is a retryable failure (the
        workflow's retry policy spaces the attempts); a URL that now points somewhere
        refused is not retried; a deleted or disabled webhook ends the delivery quietly."""
        outgoing = await asyncio.to_thread(self._outgoing, delivery_id)
        if outgoing is None:
            return "gone"
        if outgoing.status is DeliveryStatus.DELIVERED:
            return "delivered"  # an attempt whose completion was lost got through
        if outgoing.status is DeliveryStatus.FAILED:
            return "failed"  # given up already: never sent anew
        if not outgoing.enabled:
            await self._give_up(delivery_id, "the webhook is disabled")
            return "disabled"
        settings = self.context.settings
        at = utcnow()
        try:
            target = await check_url(outgoing.url, settings.webhook_networks)
        except UnresolvableWebhookHost as error:
            await self._record(delivery_id, at, None, str(error))
            raise ApplicationError(str(error), type=NOT_DELIVERED) from None
        except UnsafeWebhookUrl as error:
            await self._record(delivery_id, at, None, str(error))
            raise ApplicationError(str(error), type=REFUSED, non_retryable=True) from None
        answer = await send(
            target,
            outgoing.secret,
            delivery_id,
            int(at.timestamp()),
            outgoing.payload.encode(),
            settings.webhook_timeout_seconds,
        )
        await self._record(delivery_id, at, answer.status_code, answer.error)
        if answer.error is not None:
            raise ApplicationError(f"The receiver {answer.error}.", type=NOT_DELIVERED)
        return "delivered"

    @activity.defn(name="give_up_webhook_delivery")
    async def give_up_delivery(self, delivery_id: str) -> None:
        """Every attempt failed (or the URL was refused): the log keeps the last error."""
        await self._give_up(delivery_id, None)

    def _outgoing(self, delivery_id: str) -> Outgoing | None:
        with self.context.db.reading() as connection:
            return deliveries.outgoing(connection, delivery_id)

    async def _record(
        self, delivery_id: str, at: datetime, status_code: int | None, error: str | None
    ) -> None:
        def write() -> None:
            with self.context.db.writing() as connection:
                deliveries.record_attempt(connection, delivery_id, at, status_code, error)

        await asyncio.to_thread(write)

    async def _give_up(self, delivery_id: str, reason: str | None) -> None:
        def write() -> None:
            with self.context.db.writing() as connection:
                deliveries.give_up(connection, delivery_id, reason)

        await asyncio.to_thread(write)
