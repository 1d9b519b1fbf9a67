"""POST /api/jobs with an Idempotency-Key: the same key and body give the same job, once."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.audit.trail import NO_AUTH
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.service import JobService, Submission, Submitted
from pastools_jobs.temporal import JobLauncher
from tests.integration.test_api_errors import assert_problem
from tests.support.jobs import JobsApi, new_project
from tests.support.rows import start_lost
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def probe(project: str, **params: int) -> dict:
    return {"type": "probe", "project_id": project, "params": params}


def post(http: httpx.Client, body: dict, key: str | bytes) -> httpx.Response:
    raw = key if isinstance(key, bytes) else key.encode()
    return http.post("/api/jobs", json=body, headers={b"Idempotency-Key": raw})


def test_same_key_and_body_replay_the_first_job(api: JobsApi) -> None:
    project = new_project()
    first = post(api.http, probe(project, items=2, item_ms=0), "order-1")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers

    # The same request, spelled differently, is the same request.
    again = api.http.post(
        "/api/jobs",
        content=f'{{"params": {{"item_ms": 0, "items": 2}}, "project_id": "{project}", '
        '"type": "probe"}',
        headers={"Idempotency-Key": "order-1", "content-type": "application/json"},
    )
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert api.http.get(f"/api/jobs/projects/{project}/stats").json()["total"] == 1


def test_same_key_with_another_body_is_422(api: JobsApi) -> None:
    project = new_project()
    assert post(api.http, probe(project, items=1), "k").status_code == 201
    body = assert_problem(post(api.http, probe(project, items=2), "k"), 422)
    assert "different request" in body["detail"]
    assert api.http.get(f"/api/jobs/projects/{project}/stats").json()["total"] == 1


def test_keys_are_scoped_by_project(api: JobsApi) -> None:
    ids = {post(api.http, probe(new_project(), items=1), "shared").json()["id"] for _ in range(2)}
    assert len(ids) == 2


@pytest.mark.parametrize("key", ["", "with space", "clé".encode(), "x" * 201, "tab\there"])
def test_malformed_key_is_422_and_creates_nothing(api: JobsApi, key: str | bytes) -> None:
    project = new_project()
    body = assert_problem(post(api.http, probe(project), key), 422)
    assert any("Idempotency-Key" in error["field"] for error in body["errors"]), body
    assert api.http.get(f"/api/jobs/projects/{project}/stats").json()["total"] == 0


def test_simultaneous_requests_with_one_key_make_one_job(api: JobsApi) -> None:
    project = new_project()
    body = probe(project, items=1)

    def submit(_: int) -> httpx.Response:
        stack = api.stack
        with stack.client() as http:
            return post(http, body, "burst")

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(submit, range(16)))
    assert sorted(r.status_code for r in responses) == [200] * 15 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    job_id = responses[0].json()["id"]
    api.wait_for_status(job_id, "completed")
    jobs = wait_for(
        lambda: api.http.get("/api/jobs", params={"project_id": project}).json()["items"],
        what="the project's jobs",
    )
    assert [job["id"] for job in jobs] == [job_id]


def test_replay_of_a_job_whose_start_was_lost_starts_it(api: JobsApi) -> None:
    """The first request's API died between the commit and the start: the client's retry
    with the same key starts the job there and then, not after the mirror's grace."""
    project = new_project()
    db = Database(api.stack.database_url, application_name="pastools-tests")
    job_id = start_lost(db, project, params={"items": 1}, key="lost-start")
    db.dispose()
    assert api.temporal_status(job_id) is None

    replay = post(api.http, probe(project, items=1), "lost-start")

    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == job_id
    assert api.temporal_status(job_id) is not None, "the replay left the job unstarted"
    api.wait_for_status(job_id, "completed")


class AnswerLost(JobLauncher):
    """Temporal carries the start out, and its answer never arrives: DEADLINE_EXCEEDED."""

    async def start(self, job: Job, *, rerun: bool = False) -> str:
        await super().start(job, rerun=rerun)
        raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")


class RefusedLate(JobLauncher):
    """Temporal refuses every start; the first refusal comes only once the test lets it."""

    def __init__(self, client: Client, task_queue: str) -> None:
        super().__init__(client, task_queue)
        self.in_flight = asyncio.Event()
        self.answer = asyncio.Event()

    async def start(self, job: Job, *, rerun: bool = False) -> str:
        if not self.in_flight.is_set():
            self.in_flight.set()
            await self.answer.wait()
        raise RPCError("refused", RPCStatusCode.INVALID_ARGUMENT, b"")


async def stack_service(api: JobsApi, launcher: type[JobLauncher]) -> JobService:
    """The platform's own service, on the stack's database and Temporal, whose starts go
    through `launcher`."""
    client = await Client.connect(
        api.stack.temporal.address, data_converter=pydantic_data_converter
    )
    db = Database(api.stack.database_url, application_name="pastools-tests")
    return JobService(db, launcher(client, api.stack.task_queue), api.stack.storage)


def probe_submission(project: str) -> Submission:
    params = {"items": 1, "item_ms": 0, "log_every": 0}  # as the API gives them, defaults filled
    return Submission("probe", project, params, NO_AUTH, idempotency_key="k")


def test_a_start_whose_answer_was_lost_is_one_job_for_its_key(api: JobsApi) -> None:
    """The workflow may exist: the row is kept, and the client's retry is that same job."""
    project = new_project()

    async def submit() -> Submitted:
        return await (await stack_service(api, AnswerLost)).submit(probe_submission(project))

    first = asyncio.run(submit())
    replay = post(api.http, probe(project, items=1, item_ms=0), "k")

    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == first.job.id
    api.wait_for_status(first.job.id, "completed")
    jobs = api.http.get("/api/jobs", params={"project_id": project}).json()["items"]
    assert [job["id"] for job in jobs] == [first.job.id]


def test_a_replay_during_a_start_that_then_fails_holds_an_id_that_exists(api: JobsApi) -> None:
    project = new_project()

    async def race() -> tuple[Submitted, Submitted]:
        service = await stack_service(api, RefusedLate)
        launcher = service._launcher
        assert isinstance(launcher, RefusedLate)
        first = asyncio.create_task(service.submit(probe_submission(project)))
        await launcher.in_flight.wait()
        replay = await service.submit(probe_submission(project))
        launcher.answer.set()
        return await first, replay

    first, replay = asyncio.run(race())

    assert replay.replayed
    assert replay.job.id == first.job.id
    held = api.get(replay.job.id)
    assert (held["status"], held["error"]["type"]) == ("failed", "StartRefused")
