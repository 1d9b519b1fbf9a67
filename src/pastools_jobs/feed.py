"""The live change feed: one poller of the jobs table per API process, fanned out to
every open dashboard, so that a hundred pages cost the database what one costs.
A subscriber limited to one project gets only that project's jobs and counts.

The poller runs only while someone listens. Each round it reads the rows written
since the last round, and the counts of the projects they belong to, once; every
subscriber gets the same messages through its own bounded queue. A subscriber too
slow to keep up is dropped and reconnects (EventSource does so by itself).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.mirror.apply import utcnow
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


class JobFeed:
    def __init__(
        self,
        db: Database,
        render: Callable[[Job], dict[str, Any]],
        interval_seconds: float = 0.5,
    ) -> None:
        self._db = db
        self._render = render
        self._interval = interval_seconds
        # Each queue with the one project its subscriber sees, or None for all.
        self._subscribers: dict[asyncio.Queue[FeedMessage | None], str | None] = {}
        self._poller: asyncio.Task[None] | None = None
        self._seen: dict[str, datetime] = {}
        self._since = utcnow()

    async def subscribe(self, project_id: str | None = None) -> AsyncIterator[FeedMessage]:
        """Every change, or only `project_id`'s: its counts then stand for "all" as well."""
        queue: asyncio.Queue[FeedMessage | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[queue] = project_id
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
        while self._subscribers:
            try:
                messages = await asyncio.to_thread(self._read_changes)
            except SQLAlchemyError as error:
                log.warning("job feed cannot read the database: %s", error)
                messages = []
            for message in messages:
                self._publish(message)
            await asyncio.sleep(self._interval)

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
            jobs = [self._render(job) for job in rows]
        for job in rows:
            self._seen[job.id] = job.updated_at
        self._advance(upto)
        return [
            FeedMessage("jobs", {"jobs": jobs}),
            *(FeedMessage("stats", _stats_body(p, s)) for p, s in stats.items()),
        ]

    def _advance(self, since: datetime) -> None:
        self._since = since
        self._seen = {job_id: at for job_id, at in self._seen.items() if at >= since}

    def _publish(self, message: FeedMessage) -> None:
        for queue, project_id in list(self._subscribers.items()):
            for visible in visible_to(message, project_id):
                if not _offer(queue, visible):
                    log.info("dropping a live-feed subscriber that fell behind")
                    self._subscribers.pop(queue, None)
                    _offer(queue, None, force=True)
                    break


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
    }
