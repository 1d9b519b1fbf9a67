"""A stack per database backend for the fault scenarios, with its own task queue, so
that the doctor each scenario ends with compares only the scenarios' jobs."""

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, database_url
from tests.support.jobs import JobsApi
from tests.support.services import Stack, TemporalServer, start_stack


@pytest.fixture(scope="session", params=BACKENDS)
def fault_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    backend: str = request.param
    base = tmp_path_factory.mktemp(f"faults-{backend}")
    url = database_url(backend, base, request, f"faults_{backend}")
    stack = start_stack(f"faults-{backend}", base, temporal, url)
    yield stack
    stack.stop()


@pytest.fixture
def fault_api(fault_stack: Stack) -> Iterator[JobsApi]:
    with httpx.Client(
        base_url=fault_stack.url, headers=fault_stack.auth_headers, timeout=30
    ) as client:
        yield JobsApi(client, fault_stack)
