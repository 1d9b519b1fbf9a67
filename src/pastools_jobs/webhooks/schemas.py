"""The webhooks' API models: what a client sends and reads (the secret only once)."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pastools_jobs.webhooks.addresses import MAX_URL_LENGTH
from pastools_jobs.webhooks.deliveries import DeliveryStatus
from pastools_jobs.webhooks.events import WebhookEvent, WebhookFormat


def _distinct(events: list[WebhookEvent]) -> list[WebhookEvent]:
    return list(dict.fromkeys(events))


Events = Annotated[
    list[WebhookEvent],
    Field(min_length=1, max_length=len(WebhookEvent)),
    AfterValidator(_distinct),
]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
Description = Annotated[str, Field(max_length=500)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="http or https; public addresses only (see SSRF).")
    events: Events = Field(description="Which job ends are sent.")
    format: WebhookFormat = WebhookFormat.STANDARD
    description: Description | None = None
    enabled: bool = True


class WebhookUpdate(BaseModel):
    """Only the fields given change; `description: null` clears it."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    format: WebhookFormat | None = None
    description: Description | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: str
    project_id: str
    url: str
    events: list[WebhookEvent]
    format: WebhookFormat
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="`whsec_` and the base64 of the signing key: shown this once, keep it."
    )


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header, the same on every attempt.")
    event: WebhookEvent
    job_id: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
