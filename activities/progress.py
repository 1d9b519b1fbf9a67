"""Progress reporting from inside an activity: heartbeat, table row, search attribute.

The heartbeat carries the checkpoint (so a retried attempt resumes) and is how a
cancel reaches the activity; when the worker shuts down (SIGTERM) the activity stops
right after the checkpoint it just heartbeated, and its retry resumes there. The
table row is what users read, written at most once per heartbeat interval; the
JobProgress search attribute moves in 10 % steps because each step is a history event.
The row of a job the API submitted turns `running` with its work's first report, or one
heartbeat interval after the work began if no report came by then; its JobStatus
attribute with the first signal (a 10 % step, or one interval into the work).
"""

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError

from activities.job import current_job_run
from pastools_jobs.contracts import PROGRESS_SIGNAL, Progress
from pastools_jobs.db.engine import Database
from pastools_jobs.mirror.apply import apply_partition_progress, apply_progress, apply_started
from pastools_jobs.partitions import Partition

log = logging.getLogger(__name__)
T = TypeVar("T")

SEARCH_ATTRIBUTE_STEP = 10


def last_checkpoint() -> Progress | None:
    """The progress of the previous attempt's last heartbeat, if this is a retry."""
    details = activity.info().heartbeat_details
    if not details:
        return None
    return Progress.model_validate(details[0])


def worker_stopping() -> ApplicationError:
    """Retryable: the retry, on another or the restarted worker, resumes from the checkpoint."""
    return ApplicationError(
        "The worker is shutting down; the work resumes from its last checkpoint.",
        type="WorkerShutdown",
        category=ApplicationErrorCategory.BENIGN,  # expected: logged without a stack trace
    )


async def _stop(future: asyncio.Future[Any], stop: threading.Event) -> None:
    """Tell the threaded work to stop and wait until it has."""
    stop.set()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await future


def _heartbeat(checkpoint: Any) -> None:
    """A heartbeat with the checkpoint, if any (None: work that keeps none)."""
    activity.heartbeat(*([checkpoint] if checkpoint is not None else []))


async def heartbeating(
    work: Callable[[threading.Event], T],
    interval_seconds: float,
    checkpoint: Callable[[], Any] = lambda: None,
) -> T:
    """Run blocking `work` in a thread, heartbeating (with `checkpoint()`, if any) every
    `interval_seconds` meanwhile: Temporal sees the worker alive, so a worker that dies is
    noticed within the heartbeat timeout rather than the activity's whole time limit, and
    a cancel arrives. On cancel or worker shutdown, `work` is told to stop through the
    event it is given, and the retry redoes the unfinished piece from the last checkpoint."""
    stop = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(work, stop))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=interval_seconds)
            if done:
                return future.result()
            if activity.is_worker_shutdown():
                await _stop(future, stop)
                raise worker_stopping()
            _heartbeat(checkpoint())
    except asyncio.CancelledError:
        await _stop(future, stop)
        raise


class ProgressReporter:
    """Reports one work activity's progress; the activity of a partition (`partition`)
    reports its own, and the row and the signals carry the sum over the job's partitions
    (`apply_partition_progress`): one progress bar for the job."""

    def __init__(
        self, db: Database, interval_seconds: float, partition: Partition | None = None
    ) -> None:
        job = current_job_run()
        self._partition = partition
        self._job_percent = 0
        """The whole job's percentage as last written, for a partition's signals."""
        self._job_id = job.job_id
        self._run_id = job.run_id
        self._started_at = activity.info().started_time
        self._db = db
        self._interval = interval_seconds
        self._last_write = -math.inf
        # Until a write of this reporter commits, its row is likeliest still queued.
        self._row_written = False
        self._signals = SignalPlan()
        previous = activity.info().heartbeat_details
        self._last: Any = previous[0] if previous else None
        """What every heartbeat carries: a heartbeat without details would replace the
        checkpoint a retry resumed from with nothing, until the retry reports its own."""
        self._work = asyncio.current_task()
        self._start_task: asyncio.Future[None] | None = None
        """Held only so that the event loop's weak reference keeps the task alive."""
        asyncio.get_running_loop().call_later(interval_seconds, self._say_started_if_silent)

    def _say_started_if_silent(self) -> None:
        """One interval into the work, make sure the row and JobStatus say `running`.

        A job whose first report is slow (a large file's first batch) still shows it
        then; a quick first report saves the transaction, a quick 10 % step the signal,
        and a job done within the interval both."""
        self._signals.interval_passed = True
        if self._work is not None and self._work.done():
            return
        if self._last_write == -math.inf or self._signals.untold:
            self._start_task = asyncio.ensure_future(self._say_started())

    async def _say_started(self) -> None:
        if self._signals.untold:
            await self._signal(0)
        if self._last_write == -math.inf:
            await asyncio.to_thread(self._write_start)

    def _write_start(self) -> None:
        try:
            with self._db.writing() as connection:
                apply_started(connection, self._job_id, self._run_id, self._started_at)
            self._row_written = True
        except SQLAlchemyError as error:
            log.warning("could not record the start of job %s: %s", self._job_id, error)

    def checkpoint(self) -> Any:
        """The last checkpoint heartbeated (or resumed from), for heartbeats meanwhile."""
        return self._last

    async def in_thread(self, work: Callable[[threading.Event], T]) -> T:
        """Run blocking `work` in a thread, heartbeating the last checkpoint meanwhile."""
        return await heartbeating(work, self._interval, self.checkpoint)

    async def waiting_for(self, work: "asyncio.Future[T]") -> T:
        """`work`'s result, heartbeating the last checkpoint while it runs."""
        while True:
            done, _ = await asyncio.wait({work}, timeout=self._interval)
            if done:
                return work.result()
            _heartbeat(self.checkpoint())

    async def report(self, progress: Progress, *, force: bool = False) -> None:
        """Heartbeat the checkpoint (after the work it covers is committed); `force` marks
        the final report, which also writes the row whatever the pace."""
        self._last = progress.model_dump(mode="json")
        activity.heartbeat(self._last)
        stopping = activity.is_worker_shutdown() and not force
        now = time.monotonic()
        if force or stopping or now - self._last_write >= self._interval:
            self._last_write = now
            await asyncio.to_thread(self._write, progress)
        percent = self._signals.due(self._job_percent if self._partition else progress.percent)
        if percent is not None:
            await self._signal(percent)
        if stopping:
            raise worker_stopping()

    def _write(self, progress: Progress) -> None:
        try:
            with self._db.writing() as connection:
                if self._partition is None:
                    apply_progress(
                        connection,
                        self._job_id,
                        self._run_id,
                        progress,
                        self._started_at,
                        likely_queued=not self._row_written,
                    )
                else:
                    job = apply_partition_progress(
                        connection,
                        self._job_id,
                        self._run_id,
                        self._partition.index,
                        progress,
                        self._partition.job_total,
                        self._started_at,
                        likely_queued=not self._row_written,
                    )
                    self._job_percent = job.percent
            self._row_written = True
        except SQLAlchemyError as error:
            # Progress is advisory: the job goes on and the next report catches up.
            log.warning("could not record progress of job %s: %s", self._job_id, error)

    async def _signal(self, percent: int) -> None:
        """Tell the workflow; its first signal also makes JobStatus `running`."""
        before = self._signals.sending(percent)
        handle = activity.client().get_workflow_handle(self._job_id, run_id=self._run_id)
        try:
            await handle.signal(PROGRESS_SIGNAL, percent)
        except RPCError as error:
            self._signals.failed(before)
            log.warning("could not signal progress of job %s: %s", self._job_id, error)


@dataclass
class SignalPlan:
    """Which progress signals a piece of work owes its workflow: each new 10 % step, and
    a first one (0) once the work has run one heartbeat interval, which makes JobStatus
    `running`. JobProgress 0 and 100 are set at start and at completion, unsignalled."""

    told: int = -1
    """The last percentage sent; -1 while the workflow has been told nothing."""
    interval_passed: bool = False

    @property
    def untold(self) -> bool:
        return self.told < 0

    def due(self, percent: int) -> int | None:
        step = percent // SEARCH_ATTRIBUTE_STEP * SEARCH_ATTRIBUTE_STEP
        if 0 < step < 100 and step > self.told:
            return step
        if self.untold and self.interval_passed:
            return 0
        return None

    def sending(self, percent: int) -> int:
        """Count `percent` as told while it is sent; returns what to restore if it fails."""
        before = self.told
        self.told = max(before, percent)
        return before

    def failed(self, before: int) -> None:
        """The signal did not arrive: what it said is due again."""
        self.told = before
