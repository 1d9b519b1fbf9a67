"""Runs as Temporal's visibility lists them, read straight from the response protos.

The SDK's `list_workflows` decodes every run's search attributes and memo into Python
values. The reconciler needs only ids, type and whether the run is still open, and under
load that decoding was most of its CPU (about 15 % of the API's).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

PAGE_SIZE = 1000
OPEN = (
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED,
    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
)
"""Statuses of a run not known to be closed (the SDK reads an unspecified one as open too)."""


@dataclass(frozen=True)
class ListedRun:
    job_id: str
    run_id: str
    workflow_type: str
    closed: bool


async def list_runs(client: Client, query: str) -> AsyncIterator[ListedRun]:
    """Every run matching the visibility `query`, page by page."""
    token = b""
    while True:
        page = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace, page_size=PAGE_SIZE, next_page_token=token, query=query
            ),
            retry=True,
        )
        for info in page.executions:
            yield ListedRun(
                job_id=info.execution.workflow_id,
                run_id=info.execution.run_id,
                workflow_type=info.type.name,
                closed=info.status not in OPEN,
            )
        token = page.next_page_token
        if not token:
            return
