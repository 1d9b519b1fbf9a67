"""Idempotency keys: the same key and request give back the same job, never a second one.

A key is scoped to its project (the body names the project, and a caller may submit
only to its own projects), so two tenants can never collide on a key. The key lives
on the job's row, with a hash of the request: cleanup frees both with the job, and a
submission that Temporal refused deletes its row and so frees its key for a retry.
Between two concurrent requests with one key, the unique index on
(project_id, idempotency_key) decides: the loser's insert fails inside its own
transaction and it reads the winner's row instead, on SQLite as on PostgreSQL.
"""

import hashlib
import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pastools_jobs.db.models import Job
from pastools_jobs.domain import IdempotencyKeyReused
from pastools_jobs.repository import add_job, find_by_idempotency_key


def request_hash(
    job_type: str,
    project_id: str,
    params: dict[str, Any],
    run_timeout_seconds: int | None,
    priority: int | None = None,
) -> str:
    """SHA-256 of the request in canonical JSON: key order and spacing do not matter. A
    priority counts only when given, so keys used before priorities existed still match."""
    request: dict[str, Any] = {
        "type": job_type,
        "project_id": project_id,
        "params": params,
        "timeout_seconds": run_timeout_seconds,
    }
    if priority is not None:
        request["priority"] = priority
    canonical = json.dumps(
        request,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(session: Session, job: Job) -> Job:
    """Insert `job`, or return the job that an earlier request with its key created.

    Raises `IdempotencyKeyReused` when that earlier request was a different one.
    """
    key = job.idempotency_key
    if key is None:
        add_job(session, job)
        return job
    existing = find_by_idempotency_key(session, job.project_id, key)
    if existing is None:
        try:
            with session.begin_nested():
                add_job(session, job)
            return job
        except IntegrityError:
            # A concurrent request with the same key committed first: its row is visible now.
            existing = find_by_idempotency_key(session, job.project_id, key)
            if existing is None:
                raise
    if existing.request_hash != job.request_hash:
        raise IdempotencyKeyReused(job.project_id, key)
    return existing
