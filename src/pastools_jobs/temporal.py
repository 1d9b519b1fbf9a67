"""The Temporal client as the platform uses it: connecting, starting job workflows."""

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import SignalWithStartWorkflowExecutionResponse
from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.config import Settings
from pastools_jobs.contracts import RETRY_SIGNAL, JobRequest, RetryRequest, queued_attributes
from pastools_jobs.db.models import Job
from pastools_jobs.domain import TemporalUnavailable
from pastools_jobs.job_catalog import SPEC_BY_TYPE
from pastools_jobs.logs import connection_name
from pastools_jobs.tracing import temporal_interceptors

FAIRNESS_KEY_MAX_BYTES = 64
"""Temporal's limit on a fairness key; project ids may be longer."""


def fairness_key(project_id: str) -> str:
    """The project's fairness key: its id, or, past Temporal's 64 bytes, the id's start and
    a digest of the whole, so that two long ids never share a key."""
    if len(project_id.encode()) <= FAIRNESS_KEY_MAX_BYTES:
        return project_id
    digest = hashlib.sha256(project_id.encode()).hexdigest()[:16]
    return f"{project_id[:47]}~{digest}"


_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}
"""Temporal down, slow or shedding load: worth a later try. After DEADLINE_EXCEEDED the
request may have been carried out anyway."""


PLATFORM_IDENTITY = "pastools-"
"""How the identities of the platform's own Temporal clients begin (`connect`): what they
do is in the audit trail already, so a job's timeline shows from Temporal's histories only
what others did."""


async def connect(
    settings: Settings, process: str, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """A client that speaks Pydantic; `lazy` lets the API start while Temporal is down;
    `runtime`: the SDK core's own (with its metrics exporter), else the default one.
    `process` (`pastools-api`, …) names the client, with its host and pid, in every
    history event it causes."""
    assert process.startswith(PLATFORM_IDENTITY)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        identity=connection_name(process),
        data_converter=pydantic_data_converter,
        interceptors=temporal_interceptors(settings),
        lazy=lazy,
        runtime=runtime,
    )


def is_platform_identity(identity: str) -> bool:
    return identity.startswith(PLATFORM_IDENTITY)


def is_unavailable(error: RPCError) -> bool:
    return error.status in _UNAVAILABLE


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """A server that is down, or that a lazy client never reached, is `TemporalUnavailable`."""
    try:
        yield
    except RPCError as error:
        if is_unavailable(error):
            raise TemporalUnavailable() from error
        raise
    except RuntimeError as error:
        if str(error).startswith("Failed client connect"):
            raise TemporalUnavailable() from error
        raise


class JobLauncher:
    """Starts the workflow that runs a job whose row is already committed."""

    def __init__(
        self, client: Client, task_queue: str, weights: Mapping[str, float] | None = None
    ) -> None:
        """`weights`: projects' fairness weights (`Settings.fairness_weight_map`), 1 for
        the others."""
        self.client = client
        self.task_queue = task_queue
        self.weights = dict(weights or {})

    @classmethod
    def of(cls, client: Client, settings: Settings) -> "JobLauncher":
        return cls(client, settings.task_queue, settings.fairness_weight_map)

    def priority(self, job: Job) -> Priority:
        return self.place(job.project_id, job.priority)

    def place(self, project_id: str, priority: int | None = None) -> Priority:
        """A job's place in the task queue: its priority first, then a fair share for its
        project (the fairness key), which its activities inherit."""
        return Priority(
            priority_key=priority,
            fairness_key=fairness_key(project_id),
            fairness_weight=self.weights.get(project_id),
        )

    async def start(self, job: Job, *, rerun: bool = False) -> str:
        """Returns the run id; a rerun reuses the id of a failed or cancelled workflow."""
        handle = await self._start(job, rerun=rerun)
        assert handle.result_run_id is not None
        return handle.result_run_id

    async def retry(self, job: Job, request: RetryRequest) -> str:
        """A new run of a failed or cancelled job's workflow, by signal-with-start: the
        signal, first in the new run's history, carries who retried it and why. A workflow
        that still runs is only signalled (it ignores a retry): WorkflowAlreadyStartedError,
        as for a start."""
        handle = await self._start(job, rerun=True, signal=request)
        run_id = handle.result_run_id
        assert run_id is not None
        # The SDK keeps the answer's `started` only there (temporalio pinned; tested).
        response = handle._start_workflow_response
        started = isinstance(response, SignalWithStartWorkflowExecutionResponse) and (
            response.started or await self._began_with(job.id, run_id, request)
        )
        if not started:
            raise WorkflowAlreadyStartedError(job.id, SPEC_BY_TYPE[job.type].workflow_name)
        return run_id

    async def _began_with(self, job_id: str, run_id: str, request: RetryRequest) -> bool:
        """Whether the open run `run_id` is the one this very retry started: the SDK sends a
        request again when its answer is lost, and the second finds the first's run."""
        if request.retry_id is None:
            return False
        handle = self.client.get_workflow_handle(job_id, run_id=run_id)
        with unavailable_as_domain_error():
            async for event in handle.fetch_history_events():
                if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                    continue
                signal = event.workflow_execution_signaled_event_attributes
                if signal.signal_name != RETRY_SIGNAL:
                    continue
                [first] = await self.client.data_converter.decode(
                    signal.input.payloads, [RetryRequest]
                )
                return isinstance(first, RetryRequest) and first.retry_id == request.retry_id
        return False

    async def _start(
        self, job: Job, *, rerun: bool, signal: RetryRequest | None = None
    ) -> WorkflowHandle[Any, Any]:
        policy = (
            WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if rerun
            else WorkflowIDReusePolicy.REJECT_DUPLICATE
        )
        timeout = timedelta(seconds=job.run_timeout_seconds) if job.run_timeout_seconds else None
        with unavailable_as_domain_error():
            return await self.client.start_workflow(
                SPEC_BY_TYPE[job.type].workflow_name,
                JobRequest(
                    project_id=job.project_id,
                    params=job.params,
                    scope=job.submitter_scope,
                    row_exists=True,
                    attributes_set=True,
                    start_paused=job.paused_at is not None,
                ),
                id=job.id,
                task_queue=self.task_queue,
                id_reuse_policy=policy,
                execution_timeout=timeout,
                search_attributes=queued_attributes(
                    job.type, job.project_id, paused=job.paused_at is not None
                ),
                priority=self.priority(job),
                start_signal=None if signal is None else RETRY_SIGNAL,
                start_signal_args=[] if signal is None else [signal],
            )

    async def ensure_started(self, job: Job) -> str | None:
        """Make sure the workflow of a row that may never have been started runs.

        Starting a workflow id is idempotent: when another API replica, a replayed request
        or an earlier call whose answer was lost started it first, that is success too.
        Returns the run id this call started, None if it was started already."""
        try:
            return await self.start(job, rerun=job.attempt > 1)
        except WorkflowAlreadyStartedError:
            return None
