"""The leadership loop: only the lease's holder works, and a successor takes over."""

import asyncio
import uuid
from collections.abc import Callable

from pastools_jobs.db.engine import Database
from pastools_jobs.mirror.leadership import lead
from pastools_jobs.mirror.lease import Lease

TTL = 0.5


def test_only_the_holder_works_and_another_takes_over_when_it_dies(db: Database) -> None:
    name = f"queue-{uuid.uuid4().hex[:8]}"
    first, second = (Lease(db, name, holder, ttl_seconds=TTL) for holder in ("a", "b"))
    working: set[str] = set()
    most_at_once = 0

    async def work(holder: str) -> None:
        nonlocal most_at_once
        working.add(holder)
        most_at_once = max(most_at_once, len(working))
        try:
            await asyncio.Event().wait()
        finally:
            working.discard(holder)

    async def scenario() -> None:
        leader = asyncio.create_task(lead(first, lambda: work("a")))
        await until(lambda: working == {"a"})
        follower = asyncio.create_task(lead(second, lambda: work("b")))
        await asyncio.sleep(3 * TTL)
        assert working == {"a"}, "the follower waits while the leader renews"

        leader.cancel()  # stops renewing and does not give the lease up: as if it died
        await asyncio.gather(leader, return_exceptions=True)
        assert working == set()
        await until(lambda: working == {"b"}, timeout=TTL + 1)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

    asyncio.run(scenario())
    assert most_at_once == 1


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
