"""Stand-ins for the activities of every job type, registered under the real names, so
that a test (or `tests/support/histories.py`) runs the real workflow code in process
without a database, files or a stack.

`JOB_CASES` holds, per job type, what its workflow calls: the long activity (and the
snapshot local activity of validation and test runs), what those return, and the
workflow's result for that."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.slots import RunToWake, SlotAnswer, SlotRequest
from pastools_jobs.contracts import PROGRESS_SIGNAL, JobEvent, JobRequest, queued_attributes
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_catalog import BULK, EXPORT, IMPORT, PROBE, TEST_RUN, VALIDATION
from pastools_jobs.job_spec import JobTypeSpec
from pastools_jobs.job_types import JOB_WORKFLOWS
from workflows.lifecycle import JobWorkflow

DEADLINE_SECONDS = 20.0
"""How long a test waits for any one thing; the things themselves take milliseconds."""

HEARTBEAT_THROTTLE = timedelta(milliseconds=50)
"""The workers' heartbeat pace: a cancel reaches a held stand-in within it (the real
worker's pace is 0.8 times the 5 s heartbeat timeout)."""

WORKFLOW_BY_TYPE: dict[str, type[JobWorkflow[Any, Any]]] = {
    wf.spec.name: wf for wf in JOB_WORKFLOWS
}


@dataclass(frozen=True)
class Failure:
    """A domain failure as the real step raises it: non-retryable, in the user's words."""

    type: str
    message: str
    details: dict[str, Any] | None = None

    def error(self) -> ApplicationError:
        return ApplicationError(self.message, self.details, type=self.type, non_retryable=True)


@dataclass(frozen=True)
class JobCase:
    spec: JobTypeSpec
    params: dict[str, Any]
    work_activity: str
    work_result: dict[str, Any]
    """What the stand-in of the long activity returns: the real activity's result shape."""
    result: dict[str, Any]
    """The workflow's result when the work returned `work_result`."""
    failure: Failure
    """What the real activity raises for a mistake the user can fix."""
    snapshot_activity: str | None = None
    snapshot_result: dict[str, Any] | None = None
    snapshot_failure: Failure | None = None
    plan_activity: str | None = None
    """The activity that plans a big job's partitions: its stand-in plans none."""

    @property
    def job_type(self) -> str:
        return self.spec.name

    @property
    def workflow(self) -> type[JobWorkflow[Any, Any]]:
        return WORKFLOW_BY_TYPE[self.spec.name]


_SHA = "0" * 64

IMPORT_RESULT = {
    "source": "people.csv",
    "format": "csv",
    "imported": 3,
    "skipped": 0,
    "errors": [],
    "resumed_from_row": 0,
    "mode": "upsert",
    "encoding": "utf-8",
    "delimiter": ",",
    "quotechar": '"',
    "detected": ["encoding", "delimiter", "quotechar"],
    "column_types": {},
    "rejected_rows": None,
    "rejected_written": 0,
}
EXPORT_RESULT = {
    "artifact": "export.jsonl",
    "format": "jsonl",
    "compression": "none",
    "rows": 3,
    "bytes": 96,
}
VALIDATION_RESULT = {
    "valid": 3,
    "invalid": 0,
    "errors_by_path": [],
    "schema_sha256": _SHA,
    "report": "validation-report.jsonl",
}
VALIDATION_JUDGED = {**VALIDATION_RESULT, "verdict": "pass", "max_invalid": 0}
"""The workflow judges the work's counts by `max_invalid` (0 by default)."""
TEST_RUN_RESULT = {
    "tests": 1,
    "passed": 1,
    "warned": 0,
    "failed": 0,
    "status": "pass",
    "results": [
        {
            "name": "keys",
            "kind": "unique",
            "passed": True,
            "status": "pass",
            "failing": 0,
            "total": 3,
            "severity": "error",
            "warn_if": "!=0",
            "error_if": "!=0",
            "examples": [],
            "message": "",
        }
    ],
    "suite_sha256": _SHA,
    "artifacts": ["test-results.xml", "test-results.json", "failing-rows.jsonl"],
}

BULK_RESULT = {
    "action": "delete",
    "matched": 2,
    "changed": 2,
    "skipped": 0,
    "failed": 0,
    "failures": [],
}

JOB_CASES: tuple[JobCase, ...] = (
    JobCase(
        IMPORT,
        {"source": "people.csv"},
        "import_records",
        IMPORT_RESULT,
        IMPORT_RESULT,
        Failure(
            "SourceNotFound",
            "people.csv was not found in the import directory.",
            {"source": "people.csv"},
        ),
        plan_activity="plan_import",
    ),
    JobCase(
        EXPORT,
        {},
        "export_records",
        EXPORT_RESULT,
        EXPORT_RESULT,
        Failure(
            "ProjectNotFound", "Project 'lifecycle' does not exist.", {"project_id": "lifecycle"}
        ),
        plan_activity="plan_record_partitions",
    ),
    JobCase(
        VALIDATION,
        {},
        "validate_records",
        VALIDATION_RESULT,
        VALIDATION_JUDGED,
        Failure("SchemaUnusable", "The project's JSON Schema does not compile."),
        snapshot_activity="snapshot_schema",
        snapshot_result={"json_schema": {"type": "object"}, "sha256": _SHA},
        snapshot_failure=Failure(
            "NoSchema",
            "Project 'lifecycle' has no JSON Schema: set one with "
            "PUT /api/projects/lifecycle/schema.",
        ),
        plan_activity="plan_record_partitions",
    ),
    JobCase(
        TEST_RUN,
        {},
        "run_data_tests",
        TEST_RUN_RESULT,
        TEST_RUN_RESULT,
        Failure("ProjectNotFound", "Project 'other' does not exist.", {"project_id": "other"}),
        snapshot_activity="snapshot_test_suite",
        snapshot_result={
            "suite": {"tests": [{"name": "keys", "kind": "unique", "field": "id"}]},
            "sha256": _SHA,
        },
        snapshot_failure=Failure(
            "NoTestSuite",
            "Project 'lifecycle' has no tests: set them with PUT /api/projects/lifecycle/tests.",
        ),
        plan_activity="plan_record_partitions",
    ),
    JobCase(
        PROBE,
        {"items": 3},
        "process_items",
        {"items": 3, "resumed_from": 0},
        {"items": 3, "resumed_from": 0},
        Failure("ItemRefused", "Item 2 cannot be processed."),
    ),
    JobCase(
        BULK,
        {"action": "delete", "filter": {"project_id": "lifecycle"}},
        "apply_bulk_action",
        BULK_RESULT,
        BULK_RESULT,
        Failure("OutOfScope", "A bulk action of project other must filter on that project."),
    ),
)

CASE_BY_TYPE: dict[str, JobCase] = {case.job_type: case for case in JOB_CASES}


class StandInWork:
    """A job type's activities under their real names. The long one returns the case's
    result, raises `failure`, or (`held`) heartbeats until the test releases it or the
    workflow cancels it; first it signals each of `progress` to its workflow, as the real
    work's `ProgressReporter` does at each 10 % step."""

    def __init__(
        self,
        case: JobCase,
        *,
        held: bool = False,
        failure: Failure | None = None,
        snapshot_failure: Failure | None = None,
        progress: tuple[int, ...] = (),
    ) -> None:
        self.case = case
        self.progress = progress
        self.failure = failure
        self.snapshot_failure = snapshot_failure
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        if not held:
            self.release.set()

    def activities(self) -> list[Callable[..., Any]]:
        case = self.case

        @activity.defn(name=case.work_activity)
        async def work(_work: Any) -> Any:
            self.calls += 1
            self.started.set()
            if self.failure is not None:
                raise self.failure.error()
            info = activity.info()
            job = activity.client().get_workflow_handle(
                info.workflow_id or "", run_id=info.workflow_run_id
            )
            for percent in self.progress:
                await job.signal(PROGRESS_SIGNAL, percent)
            try:
                while not self.release.is_set():
                    activity.heartbeat()  # how a cancel reaches the activity
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.release.wait(), 0.05)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return case.work_result

        found: list[Callable[..., Any]] = [work]
        if case.plan_activity is not None:

            @activity.defn(name=case.plan_activity)
            async def plan(_request: Any) -> Any:
                return {"partitions": [], "window": 1}  # a small input: one activity

            found.append(plan)
        if case.snapshot_activity is None:
            return found

        @activity.defn(name=case.snapshot_activity)
        async def snapshot(_work: Any) -> Any:
            if self.snapshot_failure is not None:
                raise self.snapshot_failure.error()
            return case.snapshot_result

        return [*found, snapshot]


@dataclass
class Recorder:
    """The table's side of the workflow (`record_job_event`): every event it was given,
    in order. The recording of `hold` waits until the test releases it; `failure` makes
    every recording fail as an unreachable database does."""

    hold: JobStatus | None = None
    failure: ApplicationError | None = None
    events: list[JobEvent] = field(default_factory=list)
    attempts: int = 0
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def statuses(self) -> list[JobStatus]:
        return [event.status for event in self.events]

    @activity.defn(name="record_job_event")
    async def record_job_event(self, event: JobEvent) -> None:
        self.attempts += 1
        if self.failure is not None:
            raise self.failure
        if event.status is self.hold:
            self.holding.set()
            await self.release.wait()
        self.events.append(event)


@activity.defn(name="claim_running_slot")
async def no_running_limit(request: SlotRequest) -> SlotAnswer:
    """The slot claim of a worker whose settings set no limit: granted, nothing recorded."""
    return SlotAnswer(granted=True, recorded=False)


@activity.defn(name="release_running_slot")
async def nothing_to_release(request: SlotRequest) -> list[RunToWake]:
    return []


UNLIMITED = [no_running_limit, nothing_to_release]
"""Stand-ins for the running-slot local activities, for tests of anything else."""


@asynccontextmanager
async def job_worker(
    client: Client,
    task_queue: str,
    case: JobCase,
    work: StandInWork,
    recorder: Recorder,
    *,
    runs_activities: bool = True,
) -> AsyncIterator[Worker]:
    """The real workflow class of `case`, with the stand-ins and the recorder; without
    `runs_activities`, only workflow tasks and local activities (as a worker whose
    activity slots are all taken)."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[case.workflow],
        activities=[*work.activities(), recorder.record_job_event, *UNLIMITED],
        no_remote_activities=not runs_activities,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    ) as worker:
        yield worker


async def start_job(
    client: Client, case: JobCase, task_queue: str, *, from_api: bool = True
) -> WorkflowHandle[Any, Any]:
    """Start the job as the API does (row written, attributes set at start), or, with
    `from_api=False`, as `temporal workflow start` does (the workflow records itself)."""
    request = JobRequest(
        project_id="lifecycle",
        params=case.params,
        row_exists=from_api,
        attributes_set=from_api,
    )
    return await client.start_workflow(
        case.workflow.run,  # type: ignore[attr-defined]
        request,
        id=f"{case.job_type}-{uuid.uuid4().hex}",
        task_queue=task_queue,
        search_attributes=queued_attributes(case.job_type, "lifecycle") if from_api else None,
    )


async def in_history(handle: WorkflowHandle[Any, Any], event_type: EventType.ValueType) -> None:
    """Wait, with a deadline, until the workflow's history holds an event of that type."""

    async def seen() -> None:
        while event_type not in [event.event_type async for event in handle.fetch_history_events()]:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(seen(), DEADLINE_SECONDS)
