"""The WebhookDelivery workflow in process, its activities replaced by stand-ins under
their real names: retried attempts, attempts exhausted, a refusal not retried. Whatever
happens to the delivery, the workflow completes (a delivery failing is no job failure)."""

import uuid

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pastools_jobs.webhooks.contracts import WebhookDeliveryRequest, delivery_workflow_id
from workflows.webhook_delivery import WebhookDelivery

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]


class Receiver:
    """Stand-in activities: each attempt fails while `failures` lasts."""

    def __init__(self, failures: int, *, non_retryable: bool = False) -> None:
        self.failures = failures
        self.non_retryable = non_retryable
        self.attempts = 0
        self.given_up: list[str] = []

    @activity.defn(name="deliver_webhook")
    async def deliver(self, delivery_id: str) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ApplicationError("answered 500", non_retryable=self.non_retryable)
        return "delivered"

    @activity.defn(name="give_up_webhook_delivery")
    async def give_up(self, delivery_id: str) -> None:
        self.given_up.append(delivery_id)


async def deliver(env: WorkflowEnvironment, receiver: Receiver, max_attempts: int = 3) -> str:
    task_queue = f"webhooks-{uuid.uuid4().hex}"
    delivery_id = f"msg_{uuid.uuid4().hex}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[WebhookDelivery],
        activities=[receiver.deliver, receiver.give_up],
    ):
        return await env.client.execute_workflow(
            WebhookDelivery.run,
            WebhookDeliveryRequest(
                delivery_id=delivery_id,
                timeout_seconds=1,
                max_attempts=max_attempts,
                retry_initial_seconds=0.01,
            ),
            id=delivery_workflow_id(delivery_id),
            task_queue=task_queue,
        )


async def test_failed_attempts_are_retried_until_one_gets_through(
    workflow_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(failures=2)
    assert await deliver(workflow_env, receiver) == "delivered"
    assert (receiver.attempts, receiver.given_up) == (3, [])


async def test_attempts_exhausted_end_the_delivery_failed_and_the_workflow_completes(
    workflow_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(failures=10)
    assert await deliver(workflow_env, receiver) == "failed"
    assert receiver.attempts == 3 and len(receiver.given_up) == 1


async def test_a_refused_url_is_not_retried(workflow_env: WorkflowEnvironment) -> None:
    receiver = Receiver(failures=10, non_retryable=True)
    assert await deliver(workflow_env, receiver) == "failed"
    assert receiver.attempts == 1 and len(receiver.given_up) == 1
