"""Session-wide real services: one Temporal dev server, one PostgreSQL cluster, and a
platform stack (API + worker processes) on each database backend."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jobs import JobsApi
from tests.support.services import (
    PostgresCluster,
    Stack,
    TemporalServer,
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
    return start_stack(f"{name}-{backend}", base, temporal, url, extra_env=extra_env)


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
