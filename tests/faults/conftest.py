"""A stack per database backend for the fault scenarios, with its own task queue, so
that the doctor each scenario ends with compares only the scenarios' jobs."""

from collections.abc import Iterator

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
    with fault_stack.client() as client:
        yield JobsApi(client, fault_stack)
