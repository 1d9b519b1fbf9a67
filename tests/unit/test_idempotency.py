"""Idempotency keys at the table: one job per project and key, whoever wins a race."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from pastools_jobs.audit.trail import NO_AUTH
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import IdempotencyKeyReused
from pastools_jobs.idempotency import claim, request_hash
from pastools_jobs.service import Submission, new_job


def submission(project: str, key: str | None, items: int = 1) -> Submission:
    return Submission(
        "probe", project, {"items": items, "item_ms": 0}, NO_AUTH, idempotency_key=key
    )


def claim_one(db: Database, job: Job) -> str:
    with db.transaction() as session:
        return claim(session, job).id


def jobs_in(db: Database, project: str) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).where(Job.project_id == project)) or 0)


def test_request_hash_ignores_how_the_params_are_written() -> None:
    assert request_hash("probe", "p", {"a": 1, "b": [1, 2]}, None) == request_hash(
        "probe", "p", {"b": [1, 2], "a": 1}, None
    )
    assert request_hash("probe", "p", {"a": 1}, None) != request_hash("probe", "p", {"a": 1}, 60)
    assert request_hash("probe", "p", {"a": 1}, None) != request_hash("probe", "q", {"a": 1}, None)


def test_same_request_gets_the_first_job(db: Database) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    first = claim_one(db, new_job(submission(project, "k")))
    assert claim_one(db, new_job(submission(project, "k"))) == first
    assert jobs_in(db, project) == 1


def test_another_request_under_the_same_key_is_refused(db: Database) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    claim_one(db, new_job(submission(project, "k", items=1)))
    with pytest.raises(IdempotencyKeyReused):
        claim_one(db, new_job(submission(project, "k", items=2)))
    assert jobs_in(db, project) == 1


def test_jobs_without_a_key_never_collide(db: Database) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    ids = {claim_one(db, new_job(submission(project, None))) for _ in range(3)}
    assert len(ids) == 3


def test_simultaneous_claims_make_one_job(db: Database) -> None:
    """On PostgreSQL all look, find nothing and insert: the unique index picks one."""
    project = f"p-{uuid.uuid4().hex[:8]}"
    contenders = 8
    start = threading.Barrier(contenders)

    def contend(_: int) -> str:
        job = new_job(submission(project, "race"))
        start.wait()
        return claim_one(db, job)

    with ThreadPoolExecutor(contenders) as pool:
        ids = set(pool.map(contend, range(contenders)))
    assert len(ids) == 1
    assert jobs_in(db, project) == 1
