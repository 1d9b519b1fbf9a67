"""The worker process: runs every job type's workflows and activities on one task queue,
and the webhook deliveries on another."""

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from datetime import timedelta
from typing import Any

from prometheus_client import start_http_server
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Interceptor, Worker

from activities.context import ActivityContext, ActivityGroup
from activities.pausing import PauseHandOver
from activities.webhooks import WebhookActivities
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.job_catalog import JOB_TYPES
from pastools_jobs.job_logs.capture import JobLogCapture
from pastools_jobs.job_types import all_activity_groups, all_workflows
from pastools_jobs.logs import JobLogContext
from pastools_jobs.metrics import TABLES
from pastools_jobs.partitions import partition_task_queue
from pastools_jobs.storage import checked_storage
from pastools_jobs.storage.base import Storage
from pastools_jobs.temporal import connect
from workflows.cleanup import CleanupFinishedJobs
from workflows.webhook_delivery import WebhookDelivery

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""On SIGTERM, running activities get this long to stop at a checkpoint."""


def activity_methods(group: ActivityGroup) -> list[Any]:
    return [
        member
        for name in dir(group)
        if not name.startswith("_")
        and hasattr(member := getattr(group, name), "__temporal_activity_definition")
    ]


def build_workers(
    client: Client,
    settings: Settings,
    db: Database,
    storage: Storage,
    job_logs: JobLogCapture | None = None,
) -> list[Worker]:
    """The jobs' worker; the big jobs' partitions on a task queue and slots of their own (a
    partition per slot, taken by whichever worker is free); the webhook deliveries' on
    another: a receiver that hangs holds delivery slots, never a job's. `job_logs` keeps
    what the jobs' activities log."""
    interceptors: list[Interceptor] = [JobLogContext(), PauseHandOver()]
    if job_logs is not None:
        interceptors.append(job_logs.interceptor())
    context = ActivityContext(settings=settings, db=db, storage=storage)
    activities = [
        method for group in all_activity_groups() for method in activity_methods(group(context))
    ]
    jobs = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=all_workflows(),
        activities=activities,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_heartbeat_throttle_interval=settings.heartbeat_interval,
        default_heartbeat_throttle_interval=settings.heartbeat_interval,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        interceptors=interceptors,
    )
    partitions = Worker(
        client,
        task_queue=partition_task_queue(settings.task_queue),
        activities=activities,
        max_concurrent_activities=settings.partition_slots,
        max_heartbeat_throttle_interval=settings.heartbeat_interval,
        default_heartbeat_throttle_interval=settings.heartbeat_interval,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        interceptors=interceptors,
    )
    webhooks = Worker(
        client,
        task_queue=settings.webhook_task_queue,
        workflows=[WebhookDelivery],
        activities=activity_methods(WebhookActivities(context)),
        max_concurrent_activities=settings.webhook_max_concurrent_deliveries,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
    return [jobs, partitions, webhooks]


def job_log_capture(settings: Settings, db: Database) -> JobLogCapture | None:
    """What the jobs' activities log, kept per job at the heartbeat's pace; None when
    `PASTOOLS_JOB_LOG_LINES` is 0."""
    if settings.job_log_lines == 0:
        return None
    return JobLogCapture(
        db,
        cap=settings.job_log_lines,
        interval_seconds=settings.heartbeat_interval_seconds,
        job_workflows={spec.workflow_name for spec in JOB_TYPES},
    )


async def ensure_cleanup_schedule(client: Client, settings: Settings) -> None:
    """The periodic cleanup of the task queue, brought in line with this worker's
    settings: created, or updated when an earlier worker made it with other values."""
    schedule_id = f"{settings.task_queue}-cleanup"
    wanted = _cleanup_schedule(settings, schedule_id)
    try:
        await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(schedule_id).update(
            lambda current: ScheduleUpdate(
                # What the settings say; the rest (an operator's pause) stays as it is.
                replace(current.description.schedule, action=wanted.action, spec=wanted.spec)
            )
        )


def _cleanup_schedule(settings: Settings, schedule_id: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CleanupFinishedJobs.run,
            settings.cleanup_max_age_days,
            id=schedule_id,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=settings.cleanup_interval_hours))]
        ),
    )


async def connect_when_ready(settings: Settings, deadline_seconds: float = 60.0) -> Client:
    """Connect, waiting for a Temporal server that is still starting."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_seconds
    while True:
        try:
            return await connect(settings, "pastools-worker", runtime=_sdk_runtime(settings))
        except RuntimeError:
            if loop.time() > give_up:
                raise
            await asyncio.sleep(0.5)


_SDK_RUNTIMES: dict[str, Runtime] = {}


def _sdk_runtime(settings: Settings) -> Runtime | None:
    """The SDK core with its Prometheus exporter, when a port is set; one per address, as
    the core binds the port once per runtime."""
    if not settings.metrics_enabled or settings.worker_sdk_metrics_port is None:
        return None
    address = f"{settings.metrics_host}:{settings.worker_sdk_metrics_port}"
    if address not in _SDK_RUNTIMES:
        metrics = PrometheusConfig(bind_address=address)
        _SDK_RUNTIMES[address] = Runtime(telemetry=TelemetryConfig(metrics=metrics))
    return _SDK_RUNTIMES[address]


def _serve_metrics(settings: Settings, db: Database) -> None:
    """The worker's own metrics (jobs finished, durations, rows, its database pool)."""
    if not settings.metrics_enabled or settings.worker_metrics_port is None:
        return
    TABLES.watch({"worker": db})
    start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    log.info("worker metrics on %s:%d", settings.metrics_host, settings.worker_metrics_port)


async def run_worker(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then let in-flight activities reach a checkpoint."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    storage = await asyncio.to_thread(checked_storage, settings)
    client = await connect_when_ready(settings)
    db = Database(settings.resolved_database_url, application_name="pastools-worker")
    _serve_metrics(settings, db)
    await ensure_cleanup_schedule(client, settings)
    job_logs = job_log_capture(settings, db)
    try:
        async with contextlib.AsyncExitStack() as workers:
            if job_logs is not None:
                # Entered first, so left last: the lines of activities that stopped at
                # shutdown are written after the workers have let them finish.
                await workers.enter_async_context(job_logs.running())
            for worker in build_workers(client, settings, db, storage, job_logs):
                await workers.enter_async_context(worker)
            log.info(
                "worker polling task queues %s and %s",
                settings.task_queue,
                settings.webhook_task_queue,
            )
            await stop.wait()
            log.info("worker stopping")
    finally:
        db.dispose()
