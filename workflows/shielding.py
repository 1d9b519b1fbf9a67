"""Workflow steps that a cancel of the workflow must not cut short."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def uncancellable(step: Awaitable[T], *, unless: Callable[[], bool] = lambda: False) -> T:
    """Run `step` to its end even if the workflow is cancelled meanwhile; `unless` says
    when a cancel should cut it short after all (a run replaying an older version)."""
    task = asyncio.ensure_future(step)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if unless():
                task.cancel()
                return await task
            uncancel()


def uncancel() -> None:
    """A cancel that was caught and overruled no longer counts against the task."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
