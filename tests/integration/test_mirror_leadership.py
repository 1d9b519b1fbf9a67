"""Mirror leadership: one mirror works at a time, through a lease in the jobs database;
another replica takes over when the leader dies; the visibility load is that of one
mirror however many API replicas run."""

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.mirror.leadership import mirror_lease
from pastools_jobs.mirror.lease import Lease
from tests.conftest import BACKENDS, database_url
from tests.support.jobs import JobsApi, new_project
from tests.support.services import (
    PostgresCluster,
    Stack,
    TemporalServer,
    start_stack,
    start_temporal,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LIST = "ListWorkflowExecutions"
WINDOW_SECONDS = 8.0
TTL_SECONDS = Settings().mirror_lease_seconds


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    name = f"lease_{uuid.uuid4().hex[:8]}"
    url = database_url(request.param, tmp_path, request, name)
    upgrade_database(url)
    database = Database(url, application_name="pastools-tests")
    yield database
    database.dispose()


def test_one_holder_at_a_time_until_its_lease_expires(db: Database) -> None:
    first, second = (Lease(db, "queue", holder, ttl_seconds=0.6) for holder in ("a", "b"))

    assert first.claim() and first.held
    assert not second.claim() and not second.held
    assert first.claim(), "a holder renews its own lease"
    assert second.leader() == "a"

    time.sleep(0.8)  # "a" hangs: no renewal
    assert not first.held, "a holder whose lease expired no longer holds it"
    assert first.leader() is None
    assert second.claim() and second.held, "an expired lease is taken over"
    assert not first.claim() and not first.held, "the old holder, awake, does not get it back"


def test_a_released_lease_is_taken_at_once(db: Database) -> None:
    first, second = (Lease(db, "queue", holder, ttl_seconds=60) for holder in ("a", "b"))
    assert first.claim()
    other_queue = Lease(db, "other-queue", "b", ttl_seconds=60)
    assert other_queue.claim(), "each task queue has a lease of its own"

    first.release()

    assert not first.held
    assert second.claim()


@pytest.fixture(scope="module")
def own_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """A Temporal server for this module alone, so that its request counts are this
    module's mirrors' and nobody else's."""
    server = start_temporal(tmp_path_factory.mktemp("leadership-temporal"))
    yield server
    server.stop()


@pytest.fixture
def leased_stack(
    own_temporal: TemporalServer, postgres: PostgresCluster, tmp_path: Path
) -> Iterator[Stack]:
    name = f"leader-{uuid.uuid4().hex[:6]}"
    url = postgres.create_database(name.replace("-", "_"))
    running = start_stack(name, tmp_path, own_temporal, url)
    yield running
    running.stop()


def list_rate(temporal: TemporalServer) -> float:
    """Visibility list requests per second over a window, as the server counted them."""
    before = temporal.requests(LIST)
    time.sleep(WINDOW_SECONDS)
    return (temporal.requests(LIST) - before) / WINDOW_SECONDS


def leader_pid(lease: Lease) -> int | None:
    holder = lease.leader()
    return int(holder.split(":")[1]) if holder else None


def test_three_replicas_one_mirror_and_a_takeover_when_the_leader_dies(leased_stack: Stack) -> None:
    stack = leased_stack
    db = Database(stack.database_url, application_name="pastools-tests")
    lease = mirror_lease(db, Settings(task_queue=stack.task_queue), holder="observer")
    try:
        first = stack.api
        assert first is not None
        wait_for(lambda: leader_pid(lease) == first.pid, timeout=10, what="a leader")
        one = list_rate(stack.temporal)

        replicas = [stack.start_api_replica(), stack.start_api_replica()]
        three = list_rate(stack.temporal)
        print(f"visibility list calls/s: one replica {one:.2f}, three {three:.2f}")
        assert one > 0
        assert three < 1.5 * one, (one, three)

        processes = {first.pid: first, **{r.process.pid: r.process for r in replicas}}
        leader = leader_pid(lease)
        assert leader in processes
        survivor = next(r for r in replicas if r.process.pid != leader)
        with httpx.Client(base_url=survivor.url, headers=stack.auth_headers, timeout=30) as http:
            api = JobsApi(http, stack)
            job_id = api.submit("probe", new_project(), items=1000, item_ms=50)["id"]
            api.wait_running(job_id)

            processes[leader].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            processes[leader].wait()
            # Only a mirror sees a terminate: no workflow code runs for it.
            stack.temporal.cli("workflow", "terminate", "-w", job_id, "--reason", "leader gone")

            successor = wait_for(
                lambda: (pid := leader_pid(lease)) not in (None, leader) and pid,
                timeout=TTL_SECONDS + 5,
                interval=0.1,
                what="another replica to take the lease",
            )
            takeover = time.monotonic() - killed_at
            print(f"takeover after {takeover:.1f}s")
            assert successor in processes
            assert takeover <= TTL_SECONDS + 2

            terminated = api.wait_for_status(job_id, "failed", timeout=15)
            assert terminated["error"]["type"] == "Terminated"
            assert api.count_drift() == []
        if first.pid == leader:
            stack.api = None  # killed above
        else:
            stack.replicas = [r for r in stack.replicas if r.process.pid != leader]
    finally:
        db.dispose()


def test_a_hung_leader_is_replaced_and_stands_down_when_it_wakes(leased_stack: Stack) -> None:
    """SIGSTOP: the leader neither dies nor renews. Its successor takes over; woken, the
    old leader must not work beside it (the visibility load stays that of one mirror)."""
    stack = leased_stack
    db = Database(stack.database_url, application_name="pastools-tests")
    lease = mirror_lease(db, Settings(task_queue=stack.task_queue), holder="observer")
    hung = stack.api
    assert hung is not None
    try:
        wait_for(lambda: leader_pid(lease) == hung.pid, timeout=10, what="a leader")
        other = stack.start_api_replica()
        one = list_rate(stack.temporal)

        hung.send_signal(signal.SIGSTOP)
        try:
            wait_for(
                lambda: leader_pid(lease) == other.process.pid,
                timeout=TTL_SECONDS + 5,
                what="the other replica to take the lease",
            )
        finally:
            hung.send_signal(signal.SIGCONT)
        woken = list_rate(stack.temporal)

        print(f"visibility list calls/s: before the hang {one:.2f}, after {woken:.2f}")
        assert woken < 1.5 * one, (one, woken)
        assert leader_pid(lease) == other.process.pid
        assert "lost the lease" in (stack.base / "api.log").read_text()
    finally:
        db.dispose()


def test_pastools_mirror_runs_alone_and_gives_its_lease_up_on_sigterm(leased_stack: Stack) -> None:
    stack = leased_stack
    """The mirror as a process of its own, for operators who keep it apart from the API."""
    db = Database(stack.database_url, application_name="pastools-tests")
    lease = mirror_lease(db, Settings(task_queue=stack.task_queue), holder="observer")
    try:
        stack.stop_api()  # a clean stop gives the lease up at once
        assert lease.leader() is None
        mirror = stack.start_mirror()
        wait_for(lambda: leader_pid(lease) == mirror.pid, timeout=15, what="pastools mirror")
        assert list_rate_briefly(stack.temporal) > 0, "the mirror works"

        mirror.send_signal(signal.SIGTERM)

        assert mirror.wait(15) == 0
        assert lease.leader() is None
    finally:
        db.dispose()


def list_rate_briefly(temporal: TemporalServer) -> float:
    before = temporal.requests(LIST)
    time.sleep(2)
    return (temporal.requests(LIST) - before) / 2
