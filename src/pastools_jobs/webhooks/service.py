"""What users do to a project's webhooks (no HTTP here): each call checks the URL first,
DNS included, then runs one transaction off the event loop, never the two together."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from pastools_jobs.audit.trail import Actor, AuditAction, record
from pastools_jobs.clock import utcnow
from pastools_jobs.datasets.projects import get_project
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Webhook, WebhookDelivery
from pastools_jobs.domain import WebhookNotFound
from pastools_jobs.repository import decode_cursor, encode_cursor
from pastools_jobs.webhooks.addresses import Network, check_url, redacted
from pastools_jobs.webhooks.schemas import WebhookCreate, WebhookUpdate
from pastools_jobs.webhooks.signing import new_secret


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    next_cursor: str | None


def new_webhook_id() -> str:
    return f"wh_{uuid.uuid4().hex}"


def get_webhook(session: Session, project_id: str, webhook_id: str) -> Webhook:
    """Another project's webhook does not exist here (404), whatever its id."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.project_id != project_id:
        get_project(session, project_id)
        raise WebhookNotFound(webhook_id)
    return webhook


def create_webhook(session: Session, project_id: str, spec: WebhookCreate) -> Webhook:
    get_project(session, project_id)
    now = utcnow()
    webhook = Webhook(
        id=new_webhook_id(),
        project_id=project_id,
        url=spec.url,
        events=[str(event) for event in spec.events],
        format=spec.format,
        secret=new_secret(),
        description=spec.description,
        enabled=spec.enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    session.flush()
    return webhook


def update_webhook(
    session: Session, project_id: str, webhook_id: str, changes: WebhookUpdate
) -> Webhook:
    webhook = get_webhook(session, project_id, webhook_id)
    given = changes.model_fields_set
    if changes.url is not None:
        webhook.url = changes.url
    if changes.events is not None:
        webhook.events = [str(event) for event in changes.events]
    if changes.format is not None:
        webhook.format = changes.format
    if changes.enabled is not None:
        webhook.enabled = changes.enabled
    if "description" in given:
        webhook.description = changes.description
    webhook.updated_at = utcnow()
    session.flush()
    return webhook


def delete_webhook(session: Session, project_id: str, webhook_id: str) -> None:
    """Its log goes with it; a delivery in flight then ends at its next attempt."""
    session.delete(get_webhook(session, project_id, webhook_id))


def list_webhooks(session: Session, project_id: str) -> list[Webhook]:
    get_project(session, project_id)
    query = select(Webhook).where(Webhook.project_id == project_id)
    return list(session.scalars(query.order_by(Webhook.created_at, Webhook.id)))


def deliveries_page(
    session: Session, project_id: str, webhook_id: str, limit: int, cursor: str | None
) -> DeliveryPage:
    """Newest first; the cursor names the last delivery seen, as the jobs list's does."""
    get_webhook(session, project_id, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if cursor is not None:
        created_at, delivery_id = decode_cursor(cursor)
        newest = tuple_(WebhookDelivery.created_at, WebhookDelivery.id)
        query = query.where(newest < tuple_(created_at, delivery_id))
    order = (WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    found = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    if len(found) <= limit:
        return DeliveryPage(found, None)
    last = found[limit - 1]
    return DeliveryPage(found[:limit], encode_cursor(last.created_at, last.id))


class WebhookService:
    def __init__(self, db: Database, allowed_networks: Sequence[Network]) -> None:
        self._db = db
        self._allowed = allowed_networks

    async def create(self, project_id: str, spec: WebhookCreate, actor: Actor) -> Webhook:
        """The new webhook, its secret included (the one time it is shown)."""
        await self._db.run(lambda s: get_project(s, project_id))  # 404 before any DNS
        await check_url(spec.url, self._allowed)

        def create(session: Session) -> Webhook:
            webhook = create_webhook(session, project_id, spec)
            _audit(session, actor, AuditAction.WEBHOOK_CREATE, webhook)
            return webhook

        return await self._db.run(create)

    async def of_project(self, project_id: str) -> list[Webhook]:
        return await self._db.run(lambda s: list_webhooks(s, project_id))

    async def get(self, project_id: str, webhook_id: str) -> Webhook:
        return await self._db.run(lambda s: get_webhook(s, project_id, webhook_id))

    async def update(
        self, project_id: str, webhook_id: str, changes: WebhookUpdate, actor: Actor
    ) -> Webhook:
        await self.get(project_id, webhook_id)  # 404 before any DNS
        if changes.url is not None:
            await check_url(changes.url, self._allowed)

        def update(session: Session) -> Webhook:
            webhook = update_webhook(session, project_id, webhook_id, changes)
            _audit(session, actor, AuditAction.WEBHOOK_UPDATE, webhook)
            return webhook

        return await self._db.run(update)

    async def delete(self, project_id: str, webhook_id: str, actor: Actor) -> None:
        def delete(session: Session) -> None:
            webhook = get_webhook(session, project_id, webhook_id)
            _audit(session, actor, AuditAction.WEBHOOK_DELETE, webhook)
            delete_webhook(session, project_id, webhook_id)

        await self._db.run(delete)

    async def deliveries(
        self, project_id: str, webhook_id: str, limit: int, cursor: str | None
    ) -> DeliveryPage:
        return await self._db.run(
            lambda s: deliveries_page(s, project_id, webhook_id, limit, cursor)
        )


def _audit(session: Session, actor: Actor, action: AuditAction, webhook: Webhook) -> None:
    """What the webhook is after the change: never its secret, nor its URL's path, which
    may be a credential (viewers read the trail, and it is kept for long)."""
    details = {
        "webhook_id": webhook.id,
        "url": redacted(webhook.url),
        "events": webhook.events,
        "format": webhook.format,
        "enabled": webhook.enabled,
    }
    record(session, actor, action, project_id=webhook.project_id, details=details)
