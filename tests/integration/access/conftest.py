"""Two projects on the shared stack, with finished jobs and files, and clients whose
tokens (made with `pastools tokens create`) see one of them, or both."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.jobs import JobsApi
from tests.support.services import Stack


@dataclass(frozen=True)
class Project:
    id: str
    export_id: str
    """A completed export: a job with a file to download."""
    failed_id: str
    """A failed import: a job that may be retried."""


@dataclass(frozen=True)
class World:
    stack: Stack
    a: Project
    b: Project


def make_project(api: JobsApi) -> Project:
    project = api.create_project(f"acc-{uuid.uuid4().hex[:10]}")
    source = api.write_import(project, f"{project}.csv", "id,name\n1,Ada\n2,Grace\n")
    api.wait_for_status(
        api.submit("import", project, source=source, key_column="id")["id"], "completed"
    )
    export = api.submit("export", project, format="csv")
    failed = api.submit_failing_import(project)
    api.wait_for_status(export["id"], "completed")
    api.wait_for_status(failed["id"], "failed")
    return Project(project, export["id"], failed["id"])


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with stack.client() as http:
        api = JobsApi(http, stack)
        yield World(stack, make_project(api), make_project(api))


def client_with(stack: Stack, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=stack.url, timeout=30, headers=headers)


@pytest.fixture(scope="module")
def clients(world: World) -> Iterator[dict[str, httpx.Client]]:
    """`viewer`, `operator` (both of project A) and `admin`."""
    stack = world.stack
    made = {
        "viewer": client_with(stack, stack.create_token("viewer", world.a.id)),
        "operator": client_with(stack, stack.create_token("operator", world.a.id)),
        "admin": client_with(stack, stack.create_token("admin")),
    }
    yield made
    for client in made.values():
        client.close()
