"""The floor of an HTTP front for the platform's workflows: `python -m bench.relay
--address A --task-queue Q --port P`.

One FastAPI route on the API's own server settings (uvicorn, uvloop, httptools, access
log) that starts `ShapedRawWorkflow` (the platform workflow's Temporal calls, nothing
else) and answers its id: no token check, no validation beyond its body, no jobs table.
Benchmark 1 submits to it with the platform side's HTTP clients, so the gap between it
and the raw SDK is what an HTTP hop plus the platform's Temporal calls cost, and the gap
between it and the platform is what the platform's own code and its database cost.
"""

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from pydantic import BaseModel
from temporalio.client import Client

from bench.raw import RawWork, ShapedRawWorkflow
from pastools_jobs.contracts import queued_attributes


class Submission(BaseModel):
    """The project only: it goes into the search attributes, as a job's does."""

    project_id: str


class Started(BaseModel):
    id: str


def create_relay(address: str, task_queue: str) -> FastAPI:
    """The relay's app, connected to Temporal for its lifetime like the platform's API."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.temporal = await Client.connect(address)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/workflows", status_code=201)
    async def start(submission: Submission, request: Request) -> Started:
        temporal: Client = request.app.state.temporal
        handle = await temporal.start_workflow(
            ShapedRawWorkflow.run,
            RawWork(items=1),
            id=f"relay-{uuid.uuid4().hex}",
            task_queue=task_queue,
            search_attributes=queued_attributes("probe", submission.project_id),
        )
        return Started(id=handle.id)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True, help="Temporal frontend host:port")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_relay(args.address, args.task_queue),
        host="127.0.0.1",
        port=args.port,
        log_level="info",
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
