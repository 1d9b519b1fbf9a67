"""Reading batches ahead: the next batch is read in a thread while this one is worked
on, so that parsing or fetching overlaps the database and the files."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

T = TypeVar("T")


async def read_ahead(batches: Iterator[T]) -> AsyncIterator[T]:
    pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    try:
        while (batch := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            yield batch
    finally:
        pending.cancel()  # a batch read ahead that nobody will use
