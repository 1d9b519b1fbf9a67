"""One webhook delivery: its attempts, spaced by Temporal's retry policy, then its end.

Not a job: the mirror and `pastools doctor` look only at the job types' workflows
(`SPEC_BY_WORKFLOW_NAME`), and a delivery that fails is a failed delivery, never a failed
job, so the workflow completes either way.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from pastools_jobs.webhooks.addresses import RESOLVE_TIMEOUT_SECONDS
    from pastools_jobs.webhooks.contracts import DELIVERY_WORKFLOW, WebhookDeliveryRequest

MAXIMUM_INTERVAL = timedelta(minutes=10)
BACKOFF = 2.0
SLACK = timedelta(seconds=RESOLVE_TIMEOUT_SECONDS + 10)
"""Beyond the request's own timeout: DNS (bounded apart), the database reads and writes
around it. An attempt must end before Temporal starts the next, or two would overlap."""


@workflow.defn(name=DELIVERY_WORKFLOW)
class WebhookDelivery:
    @workflow.run
    async def run(self, request: WebhookDeliveryRequest) -> str:
        initial = timedelta(seconds=request.retry_initial_seconds)
        try:
            return await workflow.execute_activity_method(
                WebhookActivities.deliver_webhook,
                request.delivery_id,
                start_to_close_timeout=timedelta(seconds=request.timeout_seconds) + SLACK,
                retry_policy=RetryPolicy(
                    initial_interval=initial,
                    backoff_coefficient=BACKOFF,
                    maximum_interval=max(MAXIMUM_INTERVAL, initial),
                    maximum_attempts=request.max_attempts,
                ),
            )
        except ActivityError:
            await workflow.execute_activity_method(
                WebhookActivities.give_up_delivery,
                request.delivery_id,
                start_to_close_timeout=timedelta(seconds=30),
            )
            return "failed"
