"""The cleanup schedule's activity: old finished jobs go, their audit entries stay until
the audit's own retention, and the cleanup is itself recorded."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from temporalio.testing import ActivityEnvironment

from activities.cleanup import CleanupActivities
from activities.context import ActivityContext
from pastools_jobs.audit.trail import NO_AUTH, AuditAction, record
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import AuditEntry, Job
from pastools_jobs.storage import open_storage
from tests.support.rows import write_finished


def entries(db: Database, project: str) -> list[tuple[str, str | None]]:
    with db.transaction() as session:
        query = select(AuditEntry.action, AuditEntry.job_id).where(AuditEntry.project_id == project)
        return sorted((action, job_id) for action, job_id in session.execute(query))


def test_cleanup_keeps_the_trail_of_the_jobs_it_removes_and_ages_it_out_apart(
    db: Database, migrated_url: str, tmp_path: Path
) -> None:
    project = f"p-{uuid.uuid4().hex[:10]}"
    write_finished(migrated_url, project, 2)
    long_ago = utcnow() - timedelta(days=400)
    with db.transaction() as session:
        session.execute(update(Job).where(Job.project_id == project).values(completed_at=long_ago))
        for n in range(2):
            job_id = f"{project}-{n:05d}"
            record(session, NO_AUTH, AuditAction.JOB_SUBMIT, project_id=project, job_id=job_id)
        session.execute(
            update(AuditEntry).where(AuditEntry.job_id == f"{project}-00000").values(at=long_ago)
        )
    settings = Settings(data_dir=tmp_path, database_url=migrated_url, audit_retention_days=365)
    cleanup = CleanupActivities(ActivityContext(settings, db, open_storage(settings)))

    deleted = asyncio.run(ActivityEnvironment().run(cleanup.delete_finished_jobs, 30.0))

    assert deleted >= 2
    with db.transaction() as session:
        left = session.scalars(select(Job.id).where(Job.project_id == project)).all()
        newest = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(2)).all()
    assert left == []
    assert entries(db, project) == [("job.submit", f"{project}-00001")], (
        "the entry within the retention stays, its job gone; the older one is aged out"
    )
    assert [e.action for e in newest] == ["audit.retention", "jobs.cleanup"]
    assert all(e.actor_kind == "schedule" for e in newest)
    assert newest[1].details == {"older_than_days": 30.0, "deleted": deleted}
