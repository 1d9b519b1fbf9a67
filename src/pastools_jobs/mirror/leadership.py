"""The mirror of one replica: it reconciles only while it holds the lease.

Any number of API replicas (and `pastools mirror` processes) may run the mirror; the
lease in the jobs database picks the one that works. The others only try to take the
lease, a database statement every fifth of its TTL, and make no Temporal call, so the
visibility requests per second are those of one mirror however many replicas run.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.metrics import MIRROR_LEADER
from pastools_jobs.mirror.lease import Lease, replica_id
from pastools_jobs.mirror.reconciler import Reconciler
from pastools_jobs.temporal import JobLauncher
from pastools_jobs.webhooks.dispatch import DeliveryDispatcher

log = logging.getLogger(__name__)

RENEWALS_PER_TTL = 5
"""The leader renews five times per TTL: a slow statement or two never costs it the lease."""


def mirror_lease(db: Database, settings: Settings, holder: str | None = None) -> Lease:
    """One lease per namespace and task queue: that is what one mirror reconciles."""
    name = f"{settings.temporal_namespace}/{settings.task_queue}"
    return Lease(db, name, holder or replica_id(), settings.mirror_lease_seconds)


async def run_mirror(db: Database, launcher: JobLauncher, settings: Settings) -> None:
    """Until cancelled: the reconciler while this replica holds the lease, nothing else
    meanwhile but attempts to take it. On a clean stop the lease is given up."""
    lease = mirror_lease(db, settings)
    metered = settings.metrics_enabled
    try:
        await lead(
            lease,
            lambda: Reconciler(
                db,
                launcher,
                settings.mirror_interval_seconds,
                may_work=lambda: lease.held,
                metered=metered,
                webhooks=DeliveryDispatcher(db, launcher.client, settings),
            ).run(),
            metered=metered,
        )
    finally:
        try:
            await asyncio.to_thread(lease.release)
        except (SQLAlchemyError, OSError) as error:
            log.warning("could not give up the mirror lease (it expires by itself): %s", error)


async def lead(
    lease: Lease, work: Callable[[], Coroutine[Any, Any, None]], *, metered: bool = True
) -> None:
    """Claim the lease every fifth of its TTL; run `work` (a fresh reconciler, whose first
    passes look back far enough to cover a predecessor's last moments) from when the lease
    is taken until it is lost. The reconciler also asks the lease before every pass and
    repair, so a replica that wakes from a hang stops before this loop has noticed."""
    every = lease.ttl_seconds / RENEWALS_PER_TTL
    working: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                await asyncio.to_thread(lease.claim)
            except (SQLAlchemyError, OSError) as error:
                log.warning("could not renew or take the mirror lease: %s", error)
            except Exception:
                # Never stop trying for good: the API would serve a table that no longer moves.
                log.exception("could not renew or take the mirror lease")
            if metered:
                MIRROR_LEADER.set(1 if lease.held else 0)
            if lease.held and working is None:
                log.info("mirror: %s leads %s", lease.holder, lease.name)
                working = asyncio.create_task(work(), name="reconciler")
            elif not lease.held and working is not None:
                log.warning("mirror: %s lost the lease of %s, following", lease.holder, lease.name)
                await _stop(working)
                working = None
            await asyncio.sleep(every)
    finally:
        if working is not None:
            await _stop(working)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
