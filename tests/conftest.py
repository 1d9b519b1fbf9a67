"""Session-wide real services: one Temporal dev server, one PostgreSQL cluster, one S3
server, and a platform stack (API + worker processes) on each database backend: SQLite
with files on local disk, PostgreSQL with files in the object store, the shapes of one
machine and of many."""

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jobs import JobsApi
from tests.support.services import (
    ObjectStore,
    PostgresCluster,
    Stack,
    TemporalServer,
    start_object_store,
    start_postgres,
    start_stack,
    start_temporal,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = start_temporal(tmp_path_factory.mktemp("temporal"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp dir: as root, the cluster runs as `postgres`, who can't enter it.
    base = Path(tempfile.mkdtemp(prefix="pastools-pg-"))
    cluster = start_postgres(base)
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    store = start_object_store(tmp_path_factory.mktemp("s3"))
    # The tests' own boto3 clients (through Stack.storage) reach it as the stacks do.
    saved = {name: os.environ.get(name) for name in store.client_env}
    os.environ.update(store.client_env)
    yield store
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    store.stop()


def storage_env(backend: str, request: pytest.FixtureRequest, name: str) -> dict[str, str]:
    """Files in a bucket of the stack's own on PostgreSQL, on local disk on SQLite."""
    if backend == "sqlite":
        return {}
    store: ObjectStore = request.getfixturevalue("object_store")
    bucket = re.sub(r"[^a-z0-9-]+", "-", name.lower())[:50].strip("-")
    return store.storage_env(f"{bucket}-{uuid.uuid4().hex[:8]}")


def database_url(backend: str, base: Path, request: pytest.FixtureRequest, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{base / 'jobs.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(name)


def backend_stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """A stack of its own (database, task queue, processes) on the backend that the
    calling fixture is parametrized with."""
    backend: str = request.param
    base = tmp_path_factory.mktemp(f"{name}-{backend}")
    url = database_url(backend, base, request, f"{name.replace('-', '_')}_{backend}")
    env = {**storage_env(backend, request, f"{name}-{backend}"), **(extra_env or {})}
    return start_stack(f"{name}-{backend}", base, temporal, url, extra_env=env)


@pytest.fixture(scope="session", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    running = backend_stack(request, temporal, tmp_path_factory, "jobs")
    yield running
    running.stop()


@pytest.fixture
def api(stack: Stack) -> Iterator[JobsApi]:
    with stack.client() as client:
        yield JobsApi(client, stack)
