"""The Temporal dev server stopped and restarted, with the same state file, while jobs run:
the worker and the API reconnect by themselves and every job finishes, including one
submitted while Temporal was down (its row waits for the mirror to start it); and the
runs schedules missed meanwhile are taken within their catch-up window, and only then.

It needs a server of its own: the session's is shared by every other test.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.faults.tally import assert_nothing_lost, tally
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, start_stack, start_temporal
from tests.support.waiting import wait_for

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


OUTAGE_SECONDS = 25
"""How long Temporal is down in the catch-up drill: five of the schedules' intervals."""


def test_schedules_take_the_runs_missed_in_an_outage_within_their_catch_up_window(
    restart_api: JobsApi,
) -> None:
    """Both schedules fall due five times while Temporal is down: the one whose window
    covers the outage starts those runs once it is back, the one with a 10 s window
    starts only the latest and counts the rest as missed."""
    api = restart_api
    project = api.create_project()
    every_5s = {"type": "probe", "params": {"items": 1}, "interval_seconds": 5}
    for schedule_id, window in (("patient", 3600), ("hasty", 10)):
        body = {"id": schedule_id, "catchup_window_seconds": window, "overlap": "allow_all"}
        created = api.http.post(f"/api/projects/{project}/schedules", json=body | every_5s)
        assert created.status_code == 201, created.text

    api.stack.temporal.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a result
    outage_ended = datetime.now(UTC)
    api.stack.temporal.start_again()

    def schedule(schedule_id: str) -> dict[str, Any]:
        response = api.http.get(f"/api/projects/{project}/schedules/{schedule_id}")
        return response.json() if response.status_code == 200 else {}

    def caught_up() -> tuple[dict[str, Any], dict[str, Any]] | None:
        patient, hasty = schedule("patient"), schedule("hasty")
        late = [run for run in patient.get("recent_runs", []) if _before(run, outage_ended)]
        missed = hasty.get("missed_catchup_window", 0)
        return (patient, hasty) if len(late) >= 4 and missed >= 2 else None

    patient, hasty = wait_for(caught_up, timeout=60, what="the schedules catching up")

    assert patient["missed_catchup_window"] == 0
    assert hasty["missed_catchup_window"] < OUTAGE_SECONDS // 5


def _before(run: dict[str, Any], moment: datetime) -> bool:
    """A run that fell due before `moment` (its scheduled time, not when it started)."""
    return datetime.fromisoformat(run["scheduled_at"]) < moment
