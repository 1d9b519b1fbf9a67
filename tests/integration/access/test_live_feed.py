"""The live feed stays open through its keepalives for as long as its token is valid,
and ends within seconds of a revoke, whether its jobs are changing or not."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import backend_stack
from tests.integration.access.conftest import client_with
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack, TemporalServer

pytestmark = pytest.mark.integration

KEEPALIVE_SECONDS = 0.5
RECHECK_SECONDS = 1.0
REVOKE_DEADLINE_SECONDS = 10.0
READ_TIMEOUT = httpx.Timeout(10, read=20)
"""Longer than the old, fixed, 15 s keepalive: a stream that ends there is seen ending."""


@pytest.fixture(scope="module", params=["sqlite"])
def feed_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack whose feed sends keepalives and checks tokens often, so tests are short."""
    settings = {
        "PASTOOLS_FEED_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
        "PASTOOLS_FEED_RECHECK_SECONDS": str(RECHECK_SECONDS),
    }
    running = backend_stack(request, temporal, tmp_path_factory, "feed", extra_env=settings)
    yield running
    running.stop()


@contextmanager
def feed_lines(stack: Stack, token: str) -> Iterator[Iterator[str]]:
    """The lines of one live-feed connection, from just after it said it is connected."""
    with (
        client_with(stack, token) as client,
        client.stream("GET", "/api/jobs/events", timeout=READ_TIMEOUT) as response,
    ):
        assert response.status_code == 200, response.read()
        lines = response.iter_lines()
        assert ": connected" in (next(lines), next(lines))
        yield lines


def revoke(stack: Stack, token: str) -> None:
    revoked = stack.tokens("revoke", token.split("_")[1])
    assert revoked.returncode == 0, revoked.stderr


def ends_within(lines: Iterator[str], seconds: float) -> bool:
    """Whether the stream ends before the deadline; keepalives keep lines coming."""
    deadline = time.monotonic() + seconds
    return all(time.monotonic() <= deadline for _ in lines)


def test_an_idle_feed_stays_open_through_keepalives(feed_stack: Stack) -> None:
    token = feed_stack.create_token("viewer", new_project())  # a project without jobs
    keepalives = 0
    with feed_lines(feed_stack, token) as lines:
        for line in lines:
            keepalives += line == ": keepalive"
            if keepalives == 3:
                break
    assert keepalives == 3, f"the stream ended after {keepalives} keepalive(s)"


def test_a_revoke_ends_an_idle_feed(feed_stack: Stack) -> None:
    token = feed_stack.create_token("viewer", new_project())
    with feed_lines(feed_stack, token) as lines:
        revoke(feed_stack, token)
        assert ends_within(lines, REVOKE_DEADLINE_SECONDS), "the revoked token's feed goes on"
    with client_with(feed_stack, token) as client:
        assert client.get("/api/jobs/events").status_code == 401


def test_a_revoke_ends_a_busy_feed(feed_stack: Stack) -> None:
    with feed_stack.client() as http:
        api = JobsApi(http, feed_stack)
        project = api.create_project()
        token = feed_stack.create_token("viewer", project)
        # About a minute of work, reporting progress every second: the feed stays busy.
        job = api.submit("probe", project, items=1200, item_ms=50)
        try:
            with feed_lines(feed_stack, token) as lines:
                assert "event: jobs" in lines, "the feed ended before the job changed"
                revoke(feed_stack, token)
                assert ends_within(lines, REVOKE_DEADLINE_SECONDS), (
                    "the revoked token's feed goes on"
                )
            assert api.get(job["id"])["status"] == "running", "the feed was not busy throughout"
        finally:
            http.post(f"/api/jobs/{job['id']}/cancel")
