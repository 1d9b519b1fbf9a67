"""Capturing what a job's activities log, in the worker.

A logging handler on the root logger takes the records (INFO and above) emitted inside
an activity of a job workflow — by `activity.logger`, a module's own logger, a library,
in the activity's task or in a thread it started — and keeps them in memory, per job.
A writer puts them into the job_logs table in batches: every heartbeat interval, when
the activity ends, and when the worker stops; never one transaction per line. Which
activity a record belongs to is set by the interceptor, in a context variable that
threads started with `asyncio.to_thread` inherit. Local activities (the workflow's own
records of its state) and workflows other than jobs' are left out; so is workflow code,
whose lines a replay would log again.
"""

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from pastools_jobs.clock import utcnow
from pastools_jobs.db.engine import Database
from pastools_jobs.failures import describe_failure
from pastools_jobs.job_logs.store import LogLine, append_lines

log = logging.getLogger(__name__)

WRITE_TRIES = 3
"""Another writer of the same job (a stalled attempt and its retry) may take a seq first."""


@dataclass(frozen=True)
class LogTarget:
    """The job, run and attempt whose activity is running in this context."""

    job_id: str
    run_id: str
    attempt: int


_TARGET: ContextVar[LogTarget | None] = ContextVar("job_log_target", default=None)


@contextlib.contextmanager
def logging_for(target: LogTarget) -> Iterator[None]:
    """Records logged in this context (and threads it starts) belong to `target`'s log."""
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def level_name(levelno: int) -> str:
    """One of the four levels the API shows; a custom level counts as the one below it."""
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    return "INFO"


@dataclass(frozen=True)
class Captured:
    """A record as it was taken: made into a line only when it is written, so that the
    lines a busy job pushes out of the buffer cost the job next to nothing."""

    record: logging.LogRecord
    message: str
    target: LogTarget

    def line(self) -> LogLine:
        return _line(self.record, self.message, self.target)


@dataclass
class PendingLines:
    """A job's lines not yet written: the newest `cap` of them, and how many older ones
    were pushed out (a job logging faster than it is written loses its oldest, as the
    table would)."""

    lines: deque[LogLine | Captured]
    skipped: int = 0

    def add(self, line: LogLine | Captured) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.skipped += 1
        self.lines.append(line)


@dataclass
class LogBuffer:
    """Lines per job, waiting to be written; safe to use from any thread."""

    cap: int
    _pending: dict[str, PendingLines] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, job_id: str, line: LogLine | Captured) -> None:
        with self._lock:
            pending = self._pending.get(job_id)
            if pending is None:
                pending = self._pending[job_id] = PendingLines(deque(maxlen=self.cap))
            pending.add(line)

    def has(self, job_id: str) -> bool:
        return job_id in self._pending

    def take(self, job_id: str | None = None) -> dict[str, PendingLines]:
        """What is pending for `job_id` (every job's if None), emptied."""
        with self._lock:
            if job_id is None:
                taken, self._pending = self._pending, {}
                return taken
            pending = self._pending.pop(job_id, None)
            return {} if pending is None else {job_id: pending}


class LogWriter:
    """Writes a buffer's lines, a transaction per job and batch, one batch at a time so
    that a job's lines reach the table in the order they were logged."""

    def __init__(self, db: Database, buffer: LogBuffer) -> None:
        self._db = db
        self._buffer = buffer
        self._writing = threading.Lock()

    def flush(self, job_id: str | None = None) -> None:
        """Write what is pending for `job_id`, or for every job. It blocks: call it in a
        thread."""
        with self._writing:
            for pending_job, pending in self._buffer.take(job_id).items():
                self._write(pending_job, pending)

    def _write(self, job_id: str, pending: PendingLines) -> None:
        """Logs are advisory: lines that cannot be written are given up, and the job goes on."""
        lines = [line.line() if isinstance(line, Captured) else line for line in pending.lines]
        for _ in range(WRITE_TRIES):
            try:
                with self._db.writing() as connection:
                    append_lines(connection, job_id, lines, pending.skipped, self._buffer.cap)
                return
            except IntegrityError as error:
                # A seq taken meanwhile by another writer of the job (tried again), or the
                # job's row gone (cleaned up).
                failure: SQLAlchemyError = error
            except SQLAlchemyError as error:
                failure = error
                break
        count = len(pending.lines)
        log.warning("could not keep %d log lines of job %s: %s", count, job_id, failure)


class JobLogHandler(logging.Handler):
    """Takes the records logged inside a job's activity into the buffer."""

    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__(logging.INFO)
        self._buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        target = _TARGET.get()
        if target is None or record.name == __name__:
            return
        # The handler before this one (standard error's) has formatted the message already.
        message = getattr(record, "message", None)
        try:
            if not isinstance(message, str):
                message = record.getMessage()
            self._buffer.add(target.job_id, Captured(record, message, target))
        except Exception:
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        # The buffer has a lock of its own: the handler's would only serialize the threads.
        if record.levelno < self.level:
            return False
        self.emit(record)
        return True


def _line(record: logging.LogRecord, message: str, target: LogTarget) -> LogLine:
    if hasattr(record, "temporal_activity"):
        # `activity.logger` appends the activity's details, which every line here knows.
        message = message.partition(" ({'activity_id': ")[0]
    if record.exc_info and record.exc_info[1] is not None:
        failure = describe_failure(record.exc_info[1])
        message = f"{message}: {failure.type}: {failure.message}"
    return LogLine(
        at=datetime.fromtimestamp(record.created, UTC),
        level=level_name(record.levelno),
        message=message,
        attempt=target.attempt,
        run_id=target.run_id,
    )


class JobLogCapture:
    """The worker's capture of job logs: the handler, its buffer and writer, the
    interceptor that marks a job's activities, and the writer's pace."""

    def __init__(
        self, db: Database, cap: int, interval_seconds: float, job_workflows: Collection[str]
    ) -> None:
        self.buffer = LogBuffer(cap)
        self.writer = LogWriter(db, self.buffer)
        self.handler = JobLogHandler(self.buffer)
        self._interval = interval_seconds
        self._job_workflows = frozenset(job_workflows)

    def interceptor(self) -> Interceptor:
        return _CaptureInterceptor(self)

    def wants(self, info: activity.Info) -> bool:
        return not info.is_local and info.workflow_type in self._job_workflows

    def note_failure(self, target: LogTarget, error: BaseException) -> None:
        """An attempt that fails says why in the job's log: its retry's lines follow."""
        failure = describe_failure(error)
        message = f"Attempt {target.attempt} failed: {failure.type}: {failure.message}"
        line = LogLine(utcnow(), "WARNING", message, target.attempt, target.run_id)
        self.buffer.add(target.job_id, line)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Capture while the block runs (the worker's life): the handler on the root logger,
        the writer every interval; what is left is written when it ends."""
        root = logging.getLogger()
        root.addHandler(self.handler)
        pace = asyncio.create_task(self._write_every_interval(), name="job-log-writer")
        try:
            yield
        finally:
            pace.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pace
            root.removeHandler(self.handler)
            await asyncio.to_thread(self.writer.flush)

    async def _write_every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await asyncio.to_thread(self.writer.flush)


class _CaptureInterceptor(Interceptor):
    def __init__(self, capture: JobLogCapture) -> None:
        self._capture = capture

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CaptureActivity(next, self._capture)


class _CaptureActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, capture: JobLogCapture) -> None:
        super().__init__(next)
        self._capture = capture

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not self._capture.wants(info):
            return await self.next.execute_activity(input)
        target = LogTarget(info.workflow_id or "", info.workflow_run_id or "", info.attempt)
        try:
            with logging_for(target):
                return await self.next.execute_activity(input)
        except Exception as error:
            self._capture.note_failure(target, error)
            raise
        finally:
            await self._flush(target.job_id)

    async def _flush(self, job_id: str) -> None:
        """The activity's last lines are in the table before its result reaches the
        workflow, so a finished job's log is whole."""
        if self._capture.buffer.has(job_id):
            await asyncio.to_thread(self._capture.writer.flush, job_id)
