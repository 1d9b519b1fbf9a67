"""The live change feed: one poller of the jobs table per API process, fanned out to
every open dashboard, so that a hundred pages cost the database what one costs.
A subscriber limited to one project gets only that project's jobs and counts.

The poller runs only while someone listens. Each round it reads the rows written
since the last round, and the counts of the projects they belong to, once; every
subscriber gets the same messages through its own bounded queue. A subscriber too
slow to keep up is dropped and reconnects (EventSource does so by itself).

A stream outlives the request that authenticated it, so every few seconds the poller
checks the tokens of all its subscribers in one query and ends those revoked since.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pastools_jobs.auth.tokens import active_tokens
from pastools_jobs.clock import utcnow
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.repository import JobStats, changed_since, job_stats

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=2)
"""Rows committed a little after their `updated_at` was stamped are still seen."""

QUEUE_SIZE = 256
BATCH = 500


@dataclass(frozen=True)
class FeedMessage:
    event: str
    data: Any


@dataclass(frozen=True)
class Subscriber:
    project_id: str | None
    """The one project it sees, or None for all."""
    token_id: str | None
    """The token it was opened with; None when authentication is off."""


class JobFeed:
    def __init__(
        self,
        db: Database,
        render: Callable[[Job], dict[str, Any]],
        interval_seconds: float = 0.5,
        recheck_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._render = render
        self._interval = interval_seconds
        self._recheck = recheck_seconds
        self._subscribers: dict[asyncio.Queue[FeedMessage | None], Subscriber] = {}
        self._poller: asyncio.Task[None] | None = None
        self._seen: dict[str, datetime] = {}
        self._since = utcnow()

    async def subscribe(
        self, project_id: str | None = None, token_id: str | None = None
    ) -> AsyncGenerator[FeedMessage, None]:
        """Every change, or only `project_id`'s: its counts then stand for "all" as well.
        It ends when `token_id` is revoked."""
        queue: asyncio.Queue[FeedMessage | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[queue] = Subscriber(project_id, token_id)
        self._ensure_polling()
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            self._subscribers.pop(queue, None)

    async def close(self) -> None:
        for queue in list(self._subscribers):
            _offer(queue, None)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._since = utcnow() - OVERLAP
            self._seen.clear()
            self._poller = asyncio.create_task(self._poll(), name="job-feed")

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while self._subscribers:
            # Before the changes are read: after an outage, a revoked token is sent none.
            if loop.time() - checked >= self._recheck and await self._end_revoked():
                checked = loop.time()
            try:
                messages = await asyncio.to_thread(self._read_changes)
            except SQLAlchemyError as error:
                log.warning("job feed cannot read the database: %s", error)
                messages = []
            for message in messages:
                self._publish(message)
            await asyncio.sleep(self._interval)

    async def _end_revoked(self) -> bool:
        """End the streams of tokens revoked since they opened; False if it could not tell."""
        tokens = {s.token_id for s in self._subscribers.values() if s.token_id is not None}
        if not tokens:
            return True
        try:
            revoked = tokens - await asyncio.to_thread(active_tokens, self._db, tokens)
        except SQLAlchemyError as error:
            log.warning("job feed cannot check its subscribers' tokens: %s", error)
            return False
        for queue, subscriber in list(self._subscribers.items()):
            if subscriber.token_id in revoked:
                self._end(queue)
        return True

    def _read_changes(self) -> list[FeedMessage]:
        started = utcnow()
        with self._db.transaction() as session:
            batch = changed_since(session, self._since, BATCH)
            rows = [job for job in batch if self._seen.get(job.id) != job.updated_at]
            # A full batch may hide more rows: continue from its last one next round.
            upto = batch[-1].updated_at if len(batch) == BATCH else started - OVERLAP
            if not rows:
                self._advance(upto)
                return []
            projects = {job.project_id for job in rows}
            stats = {None: job_stats(session)} | {p: job_stats(session, p) for p in projects}
            jobs = [rendered for job in rows if (rendered := self._rendered(job)) is not None]
        for job in rows:
            self._seen[job.id] = job.updated_at
        self._advance(upto)
        return [
            FeedMessage("jobs", {"jobs": jobs}),
            *(FeedMessage("stats", _stats_body(p, s)) for p, s in stats.items()),
        ]

    def _rendered(self, job: Job) -> dict[str, Any] | None:
        """The job as the page shows it; None for one the API cannot read (a job type no
        longer installed), logged, so that it stops neither the feed nor its other jobs."""
        try:
            return self._render(job)
        except Exception:
            log.exception("job feed cannot show job %s", job.id)
            return None

    def _advance(self, since: datetime) -> None:
        self._since = since
        self._seen = {job_id: at for job_id, at in self._seen.items() if at >= since}

    def _publish(self, message: FeedMessage) -> None:
        for queue, subscriber in list(self._subscribers.items()):
            for visible in visible_to(message, subscriber.project_id):
                if not _offer(queue, visible):
                    log.info("dropping a live-feed subscriber that fell behind")
                    self._end(queue)
                    break

    def _end(self, queue: asyncio.Queue[FeedMessage | None]) -> None:
        """Its subscription stops at once, whatever it has not read yet."""
        self._subscribers.pop(queue, None)
        _offer(queue, None, force=True)


def visible_to(message: FeedMessage, project_id: str | None) -> list[FeedMessage]:
    """What of a message a subscriber limited to `project_id` may see."""
    if project_id is None:
        return [message]
    if message.event == "jobs":
        jobs = [job for job in message.data["jobs"] if job["project_id"] == project_id]
        return [FeedMessage("jobs", {"jobs": jobs})] if jobs else []
    if message.data["project_id"] != project_id:
        return []
    return [message, FeedMessage(message.event, {**message.data, "project_id": None})]


def _offer(
    queue: asyncio.Queue[FeedMessage | None], message: FeedMessage | None, force: bool = False
) -> bool:
    if force:
        while not queue.empty():
            queue.get_nowait()
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        return False
    return True


def _stats_body(project_id: str | None, stats: JobStats) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "total": stats.total,
        "by_status": stats.by_status,
        "by_type": stats.by_type,
        "paused": stats.paused,
    }
