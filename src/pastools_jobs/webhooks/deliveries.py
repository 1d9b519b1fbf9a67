"""A delivery's life in its row: dispatched, each attempt logged, delivered or given up.

Each function is one short transaction's work; none waits on the network (the activity
sends between them).
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, case, delete, select, update

from pastools_jobs.clock import utcnow
from pastools_jobs.db.models import Webhook, WebhookDelivery

MAX_ERROR_LENGTH = 1000


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Written with the job's end; its workflow not started yet."""
    DELIVERING = "delivering"
    """Its workflow runs: sending, or waiting to retry."""
    DELIVERED = "delivered"
    """A request was answered 2xx."""
    FAILED = "failed"
    """Every attempt failed, or the webhook was disabled or its URL refused."""


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends, read before it sends."""

    delivery_id: str
    url: str
    secret: str
    payload: str
    enabled: bool
    status: DeliveryStatus


def undispatched(connection: Connection, limit: int) -> list[str]:
    """The oldest deliveries whose workflow has not been started."""
    query = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.dispatched_at.is_(None))
        .order_by(WebhookDelivery.created_at)
        .limit(limit)
    )
    return list(connection.scalars(query))


def mark_dispatched(connection: Connection, ids: list[str]) -> None:
    """Stamped after the starts: a quick workflow may have delivered (or given up) by
    then, and its status stays."""
    pending = WebhookDelivery.status == DeliveryStatus.PENDING
    connection.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.dispatched_at.is_(None))
        .values(
            dispatched_at=utcnow(),
            status=case((pending, DeliveryStatus.DELIVERING), else_=WebhookDelivery.status),
        )
    )


def outgoing(connection: Connection, delivery_id: str) -> Outgoing | None:
    """None when the delivery is gone (its webhook was deleted, and its log with it)."""
    row = connection.execute(
        select(
            WebhookDelivery.payload,
            WebhookDelivery.status,
            Webhook.url,
            Webhook.secret,
            Webhook.enabled,
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id == delivery_id)
    ).first()
    if row is None:
        return None
    return Outgoing(
        delivery_id, row.url, row.secret, row.payload, row.enabled, DeliveryStatus(row.status)
    )


def record_attempt(
    connection: Connection,
    delivery_id: str,
    at: datetime,
    status_code: int | None,
    error: str | None,
) -> None:
    """One request's outcome: delivered on a 2xx (error None), else why not, in words."""
    values: dict[str, object] = {
        "attempts": WebhookDelivery.attempts + 1,
        "last_attempt_at": at,
        "last_status_code": status_code,
        "last_error": error[:MAX_ERROR_LENGTH] if error else None,
    }
    if error is None:
        values |= {"status": DeliveryStatus.DELIVERED, "delivered_at": at}
    connection.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status != DeliveryStatus.DELIVERED,
        )
        .values(values)
    )


def give_up(connection: Connection, delivery_id: str, reason: str | None = None) -> None:
    """Failed for good, unless a request got through; `reason` replaces the last error
    when the delivery ends for a reason of its own (disabled, URL refused)."""
    values: dict[str, object] = {"status": DeliveryStatus.FAILED}
    if reason is not None:
        values["last_error"] = reason[:MAX_ERROR_LENGTH]
    connection.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status != DeliveryStatus.DELIVERED,
        )
        .values(values)
    )


def delete_ended_before(connection: Connection, cutoff: datetime) -> int:
    """The periodic cleanup's share: delivery logs kept as long as finished jobs are."""
    ended = [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]
    return connection.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status.in_(ended), WebhookDelivery.created_at < cutoff
        )
    ).rowcount
