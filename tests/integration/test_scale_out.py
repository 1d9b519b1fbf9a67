"""The platform as several machines run it: two API replicas and two workers on one
PostgreSQL, one Temporal and one object store. A burst of submissions is split across the
APIs; the leading API and a worker are killed mid-run. Nothing is lost, duplicated or
stuck, `pastools doctor` finds nothing, and the survivors' metrics count what happened."""

import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.mirror.leadership import mirror_lease
from pastools_jobs.mirror.lease import Lease
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi
from tests.support.services import (
    ObjectStore,
    PostgresCluster,
    Stack,
    TemporalServer,
    free_port,
    start_stack,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PROBES = 24
IMPORTS = 4
ROWS = 20_000
LEASE_SECONDS = Settings().mirror_lease_seconds


@pytest.fixture
def scaled(
    temporal: TemporalServer,
    postgres: PostgresCluster,
    object_store: ObjectStore,
    tmp_path: Path,
) -> Iterator[Stack]:
    name = f"scale-{uuid.uuid4().hex[:6]}"
    env = {
        **object_store.storage_env(name),
        "PASTOOLS_WORKER_METRICS_PORT": str(free_port()),
    }
    url = postgres.create_database(name.replace("-", "_"))
    stack = start_stack(name, tmp_path, temporal, url, extra_env=env)
    yield stack
    stack.stop()


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url, headers=headers, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


def leader_pid(lease: Lease) -> int | None:
    holder = lease.leader()
    return int(holder.split(":")[1]) if holder else None


def submit(http: httpx.Client, job_type: str, project: str, **params: Any) -> str:
    response = http.post(
        "/api/jobs", json={"type": job_type, "project_id": project, "params": params}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_two_apis_and_two_workers_survive_losing_one_of_each(scaled: Stack) -> None:
    stack = scaled
    replica = stack.start_api_replica()
    second_worker_port = free_port()
    stack.start_worker_replica({"PASTOOLS_WORKER_METRICS_PORT": str(second_worker_port)})
    first_api, second_api = (
        stack.client(),
        httpx.Client(base_url=replica.url, headers=stack.auth_headers, timeout=30),
    )
    db = Database(stack.database_url, application_name="pastools-tests")
    lease = mirror_lease(db, Settings(task_queue=stack.task_queue), holder="observer")
    try:
        project = JobsApi(first_api, stack).create_project()
        csv = "id,name\n" + "".join(f"{i},name-{i}\n" for i in range(ROWS))
        upload = second_api.post(
            f"/api/projects/{project}/uploads", files={"file": ("people.csv", csv.encode())}
        )
        assert upload.status_code == 201, upload.text
        source = upload.json()["source"]

        orders: list[tuple[httpx.Client, str, dict[str, Any]]] = [
            (first_api if n % 2 else second_api, "probe", {"items": 20, "item_ms": 100})
            for n in range(PROBES)
        ]
        orders += [
            (
                first_api if n % 2 else second_api,
                "import",
                {"source": source, "key_column": "id", "batch_rows": 500},
            )
            for n in range(IMPORTS)
        ]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda o: submit(o[0], o[1], project, **o[2]), orders))
        assert len(set(ids)) == len(orders)

        survivor = JobsApi(second_api, stack)
        wait_for(
            lambda: sum(survivor.get(i)["status"] == "running" for i in ids) >= 2,
            what="jobs running on both workers",
        )
        leader = wait_for(lambda: leader_pid(lease), what="a mirror leading")
        assert stack.api is not None
        if leader == stack.api.pid:
            stack.kill_api()
        else:
            assert leader == replica.process.pid
            replica.process.send_signal(signal.SIGKILL)
            replica.process.wait()
            survivor = JobsApi(first_api, stack)
        stack.kill_worker()
        survivor_url = str(survivor.http.base_url)

        wait_for(
            lambda: leader_pid(lease) not in (None, leader),
            timeout=LEASE_SECONDS + 10,
            what="the surviving API leading the mirror",
        )

        for job_id in ids:
            done = survivor.wait_for_status(job_id, "completed", "failed", "cancelled", timeout=180)
            assert done["status"] == "completed", (job_id, done["error"])
        listed = survivor.http.get("/api/jobs", params={"project_id": project, "limit": 500}).json()
        assert sorted(job["id"] for job in listed["items"]) == sorted(ids), (
            "a job was lost or doubled"
        )
        assert survivor.http.get(f"/api/projects/{project}").json()["records"] == ROWS

        export_id = submit(survivor.http, "export", project, format="csv")
        assert (
            survivor.wait_for_status(export_id, "completed", "failed", timeout=60)["status"]
            == "completed"
        )
        artifact = survivor.http.get(f"/api/jobs/{export_id}/artifacts/export.csv")
        assert artifact.status_code == 200
        assert len(artifact.content.splitlines()) == ROWS + 1

        assert_consistent(stack)

        api_metrics = scrape(f"{survivor_url}/metrics", stack.auth_headers)
        completed = {
            kind: api_metrics.get(
                ("pastools_jobs", frozenset({("status", "completed"), ("type", kind)})), 0
            )
            for kind in ("probe", "import", "export")
        }
        assert completed == {"probe": PROBES, "import": IMPORTS, "export": 1}
        assert api_metrics[("pastools_mirror_leader", frozenset())] == 1
        worker_metrics = scrape(f"http://127.0.0.1:{second_worker_port}/metrics")
        finished = sum(
            count
            for (name, pairs), count in worker_metrics.items()
            if name == "pastools_jobs_finished_total" and ("status", "completed") in pairs
        )
        assert finished >= 1, "the surviving worker counted none of the jobs it finished"
    finally:
        first_api.close()
        second_api.close()
        db.dispose()
