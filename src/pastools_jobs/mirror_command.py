"""`pastools mirror`: the mirror as a process of its own, apart from the API."""

import asyncio
import contextlib
import logging
import signal

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.mirror.leadership import mirror_lease, run_mirror
from pastools_jobs.temporal import JobLauncher, connect

log = logging.getLogger(__name__)


async def run_mirror_process(settings: Settings) -> None:
    """Until SIGTERM or SIGINT: the leased mirror, as an API replica runs it. The
    database must answer, and be migrated, at start (a service manager restarts a
    process that fails); Temporal may come later, as for the API."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = Database(settings.resolved_database_url, application_name="pastools-mirror")
    try:
        # Fails here, with the CLI's "is it migrated?", rather than retrying forever.
        leader = await asyncio.to_thread(mirror_lease(db, settings).leader)
        log.info("mirror lease held by %s", leader or "nobody")
        client = await connect(settings, "pastools-mirror", lazy=True)
        mirror = asyncio.create_task(run_mirror(db, JobLauncher.of(client, settings), settings))
        log.info("mirror of task queue %s running", settings.task_queue)
        await stop.wait()
        log.info("mirror stopping")
        mirror.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mirror
    finally:
        db.dispose()
