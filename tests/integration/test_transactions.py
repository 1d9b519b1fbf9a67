"""No request holds a database transaction while it waits on Temporal.

Temporal here is a black hole: it accepts connections and never answers, as a server
that hangs does. While a request waits on it, another writer (a worker's progress,
another request) must get the database at once.
"""

import socket
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from pastools_jobs.api.app import create_app
from pastools_jobs.audit.trail import NO_AUTH
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import add_job
from pastools_jobs.service import Submission, new_job
from tests.conftest import BACKENDS, database_url

pytestmark = pytest.mark.integration

WRITER_WAIT_SECONDS = 0.5
"""How long the other writer may wait for the database: far less than a hung call takes."""


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A listening socket nobody accepts on: the kernel completes the handshake, and the
    client then waits for a server that never speaks."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    found = database_url(request.param, tmp_path, request, f"hold_{tmp_path.name[-12:]}")
    upgrade_database(found)
    return found


def job_row(url: str, status: JobStatus) -> str:
    """A job whose workflow Temporal would be asked about: started, in `status`."""
    job = new_job(Submission("probe", "p", {"items": 1, "item_ms": 0, "fail_at": None}, NO_AUTH))
    job.status, job.run_id = status, "earlier-run"
    db = Database(url, application_name="pastools-tests")
    with db.transaction() as session:
        add_job(session, job)
    db.dispose()
    return job.id


def writer_gets_in(url: str, job_id: str) -> bool:
    """Whether another writer takes the database (SQLite) or the job's row (PostgreSQL)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), WRITER_WAIT_SECONDS) as writer:
            try:
                writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            writer.rollback()
            return True
    with psycopg.connect(url.replace("+psycopg", "")) as writer:
        writer.execute(f"SET lock_timeout = '{int(WRITER_WAIT_SECONDS * 1000)}ms'")
        try:
            writer.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
        except psycopg.errors.LockNotAvailable:
            return False
        return True


def while_in_flight(
    request: Callable[[], httpx.Response], probe: Callable[[], bool]
) -> tuple[httpx.Response, bool]:
    """Send `request`, probing the database until it is answered: the answer, and whether
    every probe got in."""
    with ThreadPoolExecutor(1) as pool:
        answer: Future[httpx.Response] = pool.submit(request)
        results = [probe()]
        while not answer.done():
            results.append(probe())
        return answer.result(), all(results)


@pytest.fixture
def hung_temporal_app(url: str, black_hole: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=url,
        temporal_address=black_hole,
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,  # transactions, not access, are under test here
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_retry_waiting_on_temporal_holds_no_transaction(
    hung_temporal_app: TestClient, url: str
) -> None:
    """A retry used to hold the job's row (on SQLite, the whole database) while it asked
    Temporal for the new run: for the 30 s a client takes to give up on a hung server."""
    failed = job_row(url, JobStatus.FAILED)

    answer, writers_got_in = while_in_flight(
        lambda: hung_temporal_app.post(f"/api/jobs/{failed}/retry"),
        lambda: writer_gets_in(url, failed),
    )

    assert writers_got_in, "the retry held the database while it waited on Temporal"
    assert answer.status_code == 503, answer.text
    after = hung_temporal_app.get(f"/api/jobs/{failed}").json()
    assert (after["status"], [a["attempt"] for a in after["attempts"]]) == ("failed", [1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    found = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(found)
    return found


def test_reads_answer_while_a_long_write_holds_sqlite(sqlite_url: str, black_hole: str) -> None:
    """A job, the list and the statistics are read while another process holds SQLite's
    write lock, as a big import's move of its staged rows does for minutes: reads take
    no write lock. They used to wait for the busy timeout (30 s), then answer 503."""
    job_id = job_row(sqlite_url, JobStatus.RUNNING)
    settings = Settings(
        database_url=sqlite_url,
        temporal_address=black_hole,
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,
    )
    with (
        TestClient(create_app(settings)) as client,
        sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as writer,
    ):
        writer.execute("BEGIN IMMEDIATE")
        answers = [client.get(path) for path in (f"/api/jobs/{job_id}", "/api/jobs")]
        answers.append(client.get("/api/jobs/stats"))
        writer.rollback()

    assert [answer.status_code for answer in answers] == [200, 200, 200], answers[-1].text
    assert answers[0].json()["status"] == "running"
    assert [job["id"] for job in answers[1].json()["items"]] == [job_id]
