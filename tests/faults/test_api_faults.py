"""SIGKILL of the API in the middle of a burst of submissions with idempotency keys.

Clients retry with the same key, on connection errors and 5xx, until they get an
answer. Every acknowledged job must exist once and complete; a row the kill left
without its workflow (committed, start cut off) is started by the mirror.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, select

from pastools_jobs.db.models import Job
from tests.conftest import BACKENDS, backend_stack
from tests.faults.tally import assert_nothing_lost, tally
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack, TemporalServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SUBMISSIONS = 500
CLIENTS = 24
KILL_AFTER = 150
"""Acknowledged submissions before the kill: the burst is well under way, far from over."""

CLIENT_DEADLINE_SECONDS = 150.0
MAX_BACKOFF_SECONDS = 1.0


@pytest.fixture(params=BACKENDS)
def crash_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack of its own: its API gets killed."""
    stack = backend_stack(request, temporal, tmp_path_factory, "api-crash")
    yield stack
    stack.stop()


class Clients:
    """Submitting clients that retry until acknowledged, and what they were told."""

    def __init__(self, stack: Stack, project: str) -> None:
        self._stack = stack
        self._body = {"type": "probe", "project_id": project, "params": {"items": 1}}
        self._deadline = time.monotonic() + CLIENT_DEADLINE_SECONDS
        self._lock = threading.Lock()
        self.acknowledged: dict[str, str] = {}
        self.retries = 0

    def submit_all(self, keys: list[str]) -> None:
        with self._stack.client() as http:
            for key in keys:
                job_id = self._submit(http, key)
                with self._lock:
                    self.acknowledged[key] = job_id

    def _submit(self, http: httpx.Client, key: str) -> str:
        backoff = 0.05
        while True:
            try:
                response = http.post("/api/jobs", json=self._body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                assert response.status_code in (200, 201), response.text
                return str(response.json()["id"])
            assert time.monotonic() < self._deadline, f"submission {key} never acknowledged"
            with self._lock:
                self.retries += 1
            # Backing off between retries, like any well-behaved client.
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def jobs_per_key(url: str, project: str) -> dict[str | None, list[str]]:
    """Straight from the table: the job ids stored under each idempotency key."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Job.idempotency_key, Job.id).where(Job.project_id == project)
            )
            found: dict[str | None, list[str]] = {}
            for key, job_id in rows:
                found.setdefault(key, []).append(job_id)
            return found
    finally:
        engine.dispose()


def test_api_killed_during_a_burst_loses_and_duplicates_nothing(crash_stack: Stack) -> None:
    project = new_project()
    keys = [f"{project}-{n}" for n in range(SUBMISSIONS)]
    clients = Clients(crash_stack, project)
    with ThreadPoolExecutor(CLIENTS) as pool:
        done = [pool.submit(clients.submit_all, keys[i::CLIENTS]) for i in range(CLIENTS)]
        wait_for(
            lambda: len(clients.acknowledged) >= KILL_AFTER,
            timeout=60,
            what=f"{KILL_AFTER} acknowledged submissions",
        )
        crash_stack.kill_api()
        crash_stack.start_api()
        for future in done:
            future.result()
    print(f"clients retried {clients.retries} times across the kill")

    with crash_stack.client() as http:
        result = tally(
            JobsApi(http, crash_stack),
            project,
            submitted=SUBMISSIONS,
            acknowledged=clients.acknowledged.values(),
        )
    assert_nothing_lost(result)
    assert result.acknowledged == result.completed == SUBMISSIONS, str(result)
    stored = jobs_per_key(crash_stack.database_url, project)
    assert stored == {key: [job_id] for key, job_id in clients.acknowledged.items()}
    # Informational: how many rows the kill left without a workflow, for the mirror to start.
    orphans = (crash_stack.base / "api.log").read_text().count("whose workflow was never started")
    print(f"the mirror started {orphans} workflows the kill had cut off")
    assert_consistent(crash_stack)
