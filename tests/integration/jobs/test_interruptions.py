"""Cancel mid-work, for every job type that works on a dataset.

A cancel reaches an activity with the answer to its next heartbeat, about one heartbeat
interval after it was asked for; an export of the big project takes less than a second
here. The stack of these tests heartbeats every 0.1 s, so that the cancel surely
reaches the work while it runs, however fast the work has become.

A worker killed mid-work is a fault scenario: tests/faults/test_worker_faults.py.
"""

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS, backend_stack
from tests.support.datasets import DATASET_JOBS, big_project
from tests.support.jobs import JobsApi
from tests.support.services import TemporalServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobsApi]:
    quick = {"PASTOOLS_HEARTBEAT_INTERVAL_SECONDS": "0.1"}
    stack = backend_stack(request, temporal, tmp_path_factory, "interruptions", quick)
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


@pytest.mark.parametrize(("job_type", "params"), DATASET_JOBS)
def test_cancel_mid_work_stops_and_leaves_no_finished_looking_file(
    api: JobsApi, job_type: str, params: dict
) -> None:
    project = big_project(api).id
    job = api.submit(job_type, project, **params)
    api.wait_running(job["id"])

    assert api.http.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    cancelled = api.wait_for_status(job["id"], "cancelled", timeout=20)

    assert cancelled["progress"]["percent"] < 100
    assert api.http.get(f"/api/jobs/{job['id']}/artifacts").json() == []
