"""In-process workflow tests: the real workflow code on in-process workers, against the
session's Temporal dev server, with stand-in activities registered under the real names.

Async tests run on asyncio through anyio's pytest plugin (`pytest.mark.anyio`)."""

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.support.services import TemporalServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(temporal: TemporalServer) -> AsyncIterator[Client]:
    yield await Client.connect(temporal.address, data_converter=pydantic_data_converter)


@pytest.fixture
def task_queue() -> str:
    """A queue of the test's own: no other worker of the session picks its tasks."""
    return f"workflow-test-{uuid.uuid4().hex}"
