"""Fair shares between projects: one project's backlog does not hold another's job back,
a priority runs first, and a project's limit on running jobs holds across two workers.

One stack per database, its worker given few activity slots so that a backlog forms."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.conftest import database_url
from tests.support.services import Stack, TemporalServer, start_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

BACKLOG = 500
LIMITED = "limited"
LIMIT = 2
SLOTS = 2
"""Activity slots per worker: A's backlog outgrows them at once."""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fair_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    backend: str = request.param
    base: Path = tmp_path_factory.mktemp(f"fair-{backend}")
    url = database_url(backend, base, request, f"fair_{backend}")
    env = {
        "PASTOOLS_WORKER_MAX_CONCURRENT_ACTIVITIES": str(SLOTS),
        "PASTOOLS_PROJECT_MAX_RUNNING_JOBS": f"{LIMITED}={LIMIT}",
    }
    stack = start_stack(f"fair-{backend}", base, temporal, url, extra_env=env)
    yield stack
    stack.stop()


def submit(http: httpx.Client, project: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "probe", "project_id": project, **fields}
    response = http.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def submit_backlog(stack: Stack, project: str, count: int) -> None:
    """`count` slow probe jobs, 32 requests at a time."""
    gate = asyncio.Semaphore(32)
    body = {"type": "probe", "project_id": project, "params": {"items": 1, "item_ms": 1000}}
    async with stack.async_client() as http:

        async def one() -> None:
            async with gate:
                response = await http.post("/api/jobs", json=body)
                assert response.status_code == 201, response.text

        await asyncio.gather(*(one() for _ in range(count)))


def has_status(http: httpx.Client, job_id: str, status: str) -> bool:
    return bool(http.get(f"/api/jobs/{job_id}").json()["status"] == status)


def completed_in(http: httpx.Client, project: str) -> int:
    stats = http.get("/api/jobs/stats", params={"project_id": project}).json()
    return int(stats["by_status"]["completed"])


def test_a_project_backlog_does_not_hold_back_another_projects_job(fair_stack: Stack) -> None:
    # One database is enough: dispatch is Temporal's, the same for either.
    if fair_stack.backend != "sqlite":
        pytest.skip("the backlog is Temporal's: shown on SQLite")
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    asyncio.run(submit_backlog(fair_stack, a, BACKLOG))
    with fair_stack.client() as http:
        urgent = submit(http, a, params={"items": 1}, priority=1)
        other = submit(http, b, params={"items": 1})
        for job in (urgent, other):
            wait_for(
                partial(has_status, http, job["id"], "completed"),
                timeout=60,
                what=f"job {job['id']} to complete",
            )
        # Without fairness both would have waited for all 500 of A's jobs, 2 at a time.
        assert completed_in(http, a) < BACKLOG // 2
        assert http.get(f"/api/jobs/{urgent['id']}").json()["priority"] == 1

    described = json.loads(
        fair_stack.temporal.cli("workflow", "describe", "-w", urgent["id"], "-o", "json").stdout
    )
    priority = described["workflowExecutionInfo"]["priority"]
    assert priority["priorityKey"] == 1
    assert priority["fairnessKey"] == a
    # The rest of the backlog is not left to the session's dev server.
    fair_stack.temporal.cli(
        "workflow", "terminate", "--query", f'ProjectId = "{a}"', "--reason", "test over", "--yes"
    )


def test_a_priority_outside_one_to_five_is_refused(fair_stack: Stack) -> None:
    with fair_stack.client() as http:
        for priority in (0, 6, "high"):
            body: dict[str, Any] = {"type": "probe", "project_id": "p", "priority": priority}
            response = http.post("/api/jobs", json=body)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")


def activity_spans(client: Client, job_ids: list[str]) -> list[tuple[datetime, datetime, str]]:
    """When each job's work ran, from Temporal's history, and which worker ran it."""

    async def span(job_id: str) -> tuple[datetime, datetime, str]:
        history = await client.get_workflow_handle(job_id).fetch_history()
        started = next(
            e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        )
        ended = next(
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        )
        worker = started.activity_task_started_event_attributes.identity
        return started.event_time.ToDatetime(), ended.event_time.ToDatetime(), worker

    async def spans() -> list[tuple[datetime, datetime, str]]:
        return list(await asyncio.gather(*(span(job_id) for job_id in job_ids)))

    return asyncio.run(spans())


def most_at_once(spans: list[tuple[datetime, datetime, str]]) -> int:
    edges = sorted([(start, 1) for start, _, _ in spans] + [(end, -1) for _, end, _ in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_the_running_limit_holds_across_workers_and_a_waiting_job_cancels(
    fair_stack: Stack,
) -> None:
    fair_stack.start_worker_replica()  # 2 workers, 4 activity slots, a limit of 2
    with fair_stack.client() as http:
        jobs = [submit(http, LIMITED, params={"items": 4, "item_ms": 400}) for _ in range(6)]
        waiting = submit(http, LIMITED, params={"items": 1})
        assert http.get(f"/api/jobs/{waiting['id']}").json()["status"] == "queued"
        response = http.post(f"/api/jobs/{waiting['id']}/cancel", json={"reason": "not now"})
        assert response.status_code == 202, response.text
        wait_for(
            partial(has_status, http, waiting["id"], "cancelled"),
            timeout=30,
            what="the waiting job to be cancelled",
        )
        for job in jobs:
            wait_for(
                partial(has_status, http, job["id"], "completed"),
                timeout=90,
                what=f"job {job['id']} to complete",
            )
    client = asyncio.run(Client.connect(fair_stack.temporal.address))
    # Cancelled while it waited for a slot: its work was never scheduled.
    history = asyncio.run(client.get_workflow_handle(waiting["id"]).fetch_history())
    kinds = {event.event_type for event in history.events}
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED in kinds
    spans = activity_spans(client, [job["id"] for job in jobs])
    # Four activity slots between the two workers; never more than two of the jobs at once.
    assert most_at_once(spans) == LIMIT
