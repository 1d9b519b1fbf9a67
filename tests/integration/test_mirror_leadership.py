"""Mirror leadership: one mirror works at a time, through a lease in the jobs database."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.mirror.lease import Lease
from tests.conftest import BACKENDS, database_url

pytestmark = pytest.mark.integration


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
