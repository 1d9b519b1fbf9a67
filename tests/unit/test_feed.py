"""The live feed reads the database once per round, however many pages listen."""

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.feed import FeedMessage, JobFeed, visible_to


def add_job(db: Database) -> str:
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    with db.transaction() as session:
        session.add(
            Job(
                id=job_id,
                type="export",
                project_id="feed",
                status="queued",
                params={},
                attempt=1,
                progress_done=0,
                created_at=now,
                updated_at=now,
            )
        )
    return job_id


async def first_job_event(messages, job_id: str) -> FeedMessage:
    async for message in messages:
        if message.event == "jobs" and any(j["id"] == job_id for j in message.data["jobs"]):
            return message
    raise AssertionError("feed ended")


async def queries_per_change(db: Database, listeners: int) -> int:
    feed = JobFeed(db, lambda job: {"id": job.id}, interval_seconds=0.05)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    subscriptions = [feed.subscribe() for _ in range(listeners)]
    # The first step of each subscription registers it with the feed.
    waiting = [asyncio.ensure_future(anext(s)) for s in subscriptions]
    await asyncio.sleep(0)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        job_id = await asyncio.to_thread(add_job, db)
        got = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        rest = [
            message if _is_about(message, job_id) else await first_job_event(s, job_id)
            for message, s in zip(got, subscriptions, strict=True)
        ]
        assert len(rest) == listeners
        return sum(1 for s in statements if "FROM jobs" in s and "count" not in s)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        await feed.close()


def _is_about(message: FeedMessage, job_id: str) -> bool:
    return message.event == "jobs" and any(j["id"] == job_id for j in message.data["jobs"])


def run_in_own_loop(coroutine: Coroutine[Any, Any, int]) -> int:
    """A fresh thread, so that no other test's event loop is in the way."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_many_listeners_cost_the_database_what_one_costs(db: Database) -> None:
    one = run_in_own_loop(queries_per_change(db, 1))
    many = run_in_own_loop(queries_per_change(db, 50))
    assert one >= 1
    # Polling rounds may differ by a few between the runs, never by the listener count.
    assert many <= one + 5, f"{many} reads for 50 listeners, {one} for one"


def test_a_subscriber_of_one_project_sees_only_its_jobs_and_counts() -> None:
    jobs = FeedMessage(
        "jobs", {"jobs": [{"id": "a1", "project_id": "a"}, {"id": "b1", "project_id": "b"}]}
    )
    counts = {"total": 1, "by_status": {}, "by_type": {}}
    assert visible_to(jobs, "b") == [
        FeedMessage("jobs", {"jobs": [{"id": "b1", "project_id": "b"}]})
    ]
    assert visible_to(jobs, None) == [jobs]
    assert visible_to(FeedMessage("jobs", {"jobs": [{"id": "a1", "project_id": "a"}]}), "b") == []
    everything = FeedMessage("stats", {"project_id": None, **counts})
    of_a = FeedMessage("stats", {"project_id": "a", **counts})
    of_b = FeedMessage("stats", {"project_id": "b", **counts})
    assert visible_to(everything, "b") == []
    assert visible_to(of_a, "b") == []
    # For one project's subscriber, "all projects" is that project.
    assert visible_to(of_b, "b") == [of_b, FeedMessage("stats", {"project_id": None, **counts})]


async def feed_past_an_unreadable_job(db: Database) -> int:
    """How many times the feed sent a job it can show, written after one it cannot."""
    unreadable = await asyncio.to_thread(add_job, db)

    def render(job: Job) -> dict[str, Any]:
        if job.id == unreadable:
            raise KeyError(job.type)  # as for a job type no longer installed
        return {"id": job.id}

    feed = JobFeed(db, render, interval_seconds=0.05)
    subscription = feed.subscribe()
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0)
    try:
        readable = await asyncio.to_thread(add_job, db)
        message = await asyncio.wait_for(waiting, 10)
        if not _is_about(message, readable):
            message = await asyncio.wait_for(first_job_event(subscription, readable), 10)
        return [job["id"] for job in message.data["jobs"]].count(readable)
    finally:
        await feed.close()


def test_a_job_the_feed_cannot_show_stops_neither_it_nor_the_others(db: Database) -> None:
    assert run_in_own_loop(feed_past_an_unreadable_job(db)) == 1
