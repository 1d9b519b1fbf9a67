"""The Temporal dev server stopped and restarted, with the same state file, while jobs run:
the worker and the API reconnect by themselves and every job finishes, including one
submitted while Temporal was down (its row waits for the mirror to start it).

It needs a server of its own: the session's is shared by every other test.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.tally import assert_nothing_lost, tally
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, start_stack, start_temporal

pytestmark = pytest.mark.integration


@pytest.fixture
def own_temporal(tmp_path: Path) -> Iterator[TemporalServer]:
    server = start_temporal(tmp_path / "temporal")
    yield server
    server.stop()


@pytest.fixture
def restart_api(own_temporal: TemporalServer, tmp_path: Path) -> Iterator[JobsApi]:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    stack = start_stack("temporal-restart", tmp_path / "stack", own_temporal, url)
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


def test_temporal_restarted_while_jobs_run_all_finish(restart_api: JobsApi) -> None:
    api = restart_api
    project = new_project()
    before = [api.submit("probe", project, items=100, item_ms=50)["id"] for _ in range(6)]
    for job_id in before[:3]:
        api.wait_running(job_id, min_done=5)

    api.stack.temporal.stop()
    during = api.submit("probe", project, items=20, item_ms=50)  # kept, started later
    assert during["status"] == "queued"
    api.stack.temporal.start_again()
    after = [api.submit("probe", project, items=20, item_ms=50)["id"] for _ in range(2)]

    acknowledged = [*before, during["id"], *after]
    result = tally(api, project, submitted=len(acknowledged), acknowledged=acknowledged)
    assert_nothing_lost(result)
    assert result.completed == len(acknowledged)
    assert_consistent(api.stack)
