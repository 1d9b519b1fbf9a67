"""Cancel mid-work, for every job type that works on a dataset.

A worker killed mid-work is a fault scenario: tests/faults/test_worker_faults.py.
"""

import pytest

from tests.support.datasets import DATASET_JOBS, big_project
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration


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
