"""The baseline's worker process: `python -m bench.raw_worker --address A --task-queue Q`.

A separate process, like `pastools worker`, with the same concurrency and heartbeat
throttling settings taken from the same `Settings` (see `pastools_jobs.worker`), so
that the comparison is between the platform and the bare SDK, not between tunings.
"""

import argparse
import asyncio
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from bench.raw import RawWorkflow, ShapedRawWorkflow, raw_items, raw_record
from pastools_jobs.config import Settings
from pastools_jobs.worker import GRACEFUL_SHUTDOWN


def build_raw_worker(client: Client, task_queue: str, settings: Settings) -> Worker:
    """The raw workflow and activity with `build_worker`'s limits and throttling."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RawWorkflow, ShapedRawWorkflow],
        activities=[raw_items, raw_record],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_heartbeat_throttle_interval=settings.heartbeat_interval,
        default_heartbeat_throttle_interval=settings.heartbeat_interval,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def serve(address: str, task_queue: str) -> None:
    """Poll until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = await Client.connect(address)
    async with build_raw_worker(client, task_queue, Settings()):
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True, help="Temporal frontend host:port")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
