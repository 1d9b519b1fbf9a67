"""/api/projects/{project_id}/webhooks: a project's webhooks and their delivery logs."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import WebhookServiceDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import ProjectId
from pastools_jobs.auth.principal import Principal, Role
from pastools_jobs.db.models import Webhook, WebhookDelivery
from pastools_jobs.webhooks.addresses import redacted
from pastools_jobs.webhooks.schemas import (
    DeliveryOut,
    DeliveryPageOut,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(
    prefix="/api/projects/{project_id}/webhooks",
    tags=["webhooks"],
    responses=responses(401, 404, 422, 503),
    dependencies=[authenticated],
)
for_change = responses(400, 403, 413)

WebhookId = Annotated[str, Path(min_length=1, max_length=40)]
MAX_PAGE = 500


def _out(webhook: Webhook, principal: Principal) -> WebhookOut:
    """The URL whole for those who may change it; a viewer sees where it goes, not the
    path that may be the receiver's own secret."""
    shown = WebhookOut.model_validate(webhook, from_attributes=True)
    if not principal.role.includes(Role.OPERATOR):
        shown.url = redacted(webhook.url)
    return shown


def _delivery(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookCreatedOut, responses=for_change
)
async def create_webhook(
    project_id: ProjectId, body: WebhookCreate, webhooks: WebhookServiceDep, principal: PrincipalDep
) -> WebhookCreatedOut:
    """A webhook for the project's job events (operator). The answer holds its signing
    secret, which is never shown again. A URL that resolves to a loopback, link-local,
    private or otherwise non-public address is refused with 422 saying why."""
    principal.require_project(project_id, Role.OPERATOR)
    webhook = await webhooks.create(project_id, body, principal.actor)
    return WebhookCreatedOut.model_validate(webhook, from_attributes=True)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(
    project_id: ProjectId, webhooks: WebhookServiceDep, principal: PrincipalDep
) -> list[WebhookOut]:
    """The project's webhooks, oldest first, without their secrets."""
    principal.require_project(project_id)
    return [_out(webhook, principal) for webhook in await webhooks.of_project(project_id)]


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    webhooks: WebhookServiceDep,
    principal: PrincipalDep,
) -> WebhookOut:
    principal.require_project(project_id)
    return _out(await webhooks.get(project_id, webhook_id), principal)


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=for_change)
async def update_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    body: WebhookUpdate,
    webhooks: WebhookServiceDep,
    principal: PrincipalDep,
) -> WebhookOut:
    """Change the fields given (operator); a new URL is checked as at creation. Events
    already written keep the body they were written with."""
    principal.require_project(project_id, Role.OPERATOR)
    return _out(await webhooks.update(project_id, webhook_id, body, principal.actor), principal)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403))
async def delete_webhook(
    project_id: ProjectId,
    webhook_id: WebhookId,
    webhooks: WebhookServiceDep,
    principal: PrincipalDep,
) -> Response:
    """Remove the webhook and its delivery log (operator); deliveries in flight stop."""
    principal.require_project(project_id, Role.OPERATOR)
    await webhooks.delete(project_id, webhook_id, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPageOut)
async def list_deliveries(
    project_id: ProjectId,
    webhook_id: WebhookId,
    webhooks: WebhookServiceDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> DeliveryPageOut:
    """The delivery log, newest first: status, attempts, the last answer or error."""
    principal.require_project(project_id)
    page = await webhooks.deliveries(project_id, webhook_id, limit, cursor)
    return DeliveryPageOut(
        items=[_delivery(d) for d in page.deliveries], next_cursor=page.next_cursor
    )
