"""What the mirror's dispatcher hands a delivery's workflow: ids and the retry settings."""

from pydantic import BaseModel, ConfigDict, Field

DELIVERY_WORKFLOW = "WebhookDelivery"


def delivery_workflow_id(delivery_id: str) -> str:
    return f"webhook-delivery-{delivery_id}"


class WebhookDeliveryRequest(BaseModel):
    """The retry settings travel with the request, read once by the dispatcher from its
    Settings: workflow code reads no environment. Fields may be added with defaults."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    timeout_seconds: float = Field(gt=0)
    max_attempts: int = Field(ge=1)
    retry_initial_seconds: float = Field(gt=0)
