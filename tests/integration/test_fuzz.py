"""Schema-driven fuzzing of the live API: no 5xx, and every response as documented.

Schemathesis reads the OpenAPI document of a real running stack and calls every
operation with generated (valid and invalid) input. The stack has no worker, so the
jobs it submits stay queued and cost nothing; it is the fuzz's own, so the other
tests never see them.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.services import Stack, TemporalServer, start_stack

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25
ENDLESS = {"/api/jobs/events"}
"""Server-Sent Events never end a response: nothing to check but that it starts."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_headers(stack: Stack) -> dict[str, str]:
    """Every header the fuzz sends: an admin token, so that every route is reached."""
    return stack.auth_headers


@pytest.fixture(scope="module")
def fuzz_stack(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("stack-fuzz")
    stack = start_stack("fuzz", base, temporal, f"sqlite:///{base / 'jobs.sqlite3'}", worker=False)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def live_schema(fuzz_stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{fuzz_stack.url}/openapi.json", headers=fuzz_headers(fuzz_stack)
    )


def fuzz(operation: APIOperation, stack: Stack) -> None:
    """Valid and invalid input, a modest number of examples: a smoke fuzz, not a campaign."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=fuzz_headers(stack), checks=CHECKS, timeout=30)

    call()


def test_every_operation_answers_as_documented(
    live_schema: schemathesis.BaseSchema, fuzz_stack: Stack, subtests: pytest.Subtests
) -> None:
    results = list(live_schema.get_all_operations())
    assert not [result.err() for result in results if isinstance(result, Err)]
    operations = [
        result.ok()
        for result in results
        if isinstance(result, Ok) and result.ok().path not in ENDLESS
    ]
    assert len(operations) > 20, "the OpenAPI document lost operations"
    for operation in operations:
        with subtests.test(operation.label):
            fuzz(operation, fuzz_stack)
