"""A stack per database backend for the fault scenarios, with its own task queue, so
that the doctor each scenario ends with compares only the scenarios' jobs."""

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, backend_stack
from tests.support.jobs import JobsApi
from tests.support.services import Stack, TemporalServer


@pytest.fixture(scope="session", params=BACKENDS)
def fault_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = backend_stack(request, temporal, tmp_path_factory, "faults")
    yield stack
    stack.stop()


@pytest.fixture
def fault_api(fault_stack: Stack) -> Iterator[JobsApi]:
    with httpx.Client(
        base_url=fault_stack.url, headers=fault_stack.auth_headers, timeout=30
    ) as client:
        yield JobsApi(client, fault_stack)
