"""Reading the audit trail: filtered pages, newest first, and a job's own entries."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pastools_jobs.db.models import AuditEntry
from pastools_jobs.domain import InvalidJobInput

JOB_ENTRIES_MAX = 1000
"""A job's timeline shows at most this many of its entries (a retry loop, say)."""


@dataclass(frozen=True)
class AuditFilter:
    project_id: str | None = None
    """The one project a caller sees, or the one asked for; None: every entry."""
    job_id: str | None = None
    actions: Sequence[str] = ()
    actor_id: str | None = None
    channel: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def audit_page(session: Session, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
    """Newest first; entries only ever grow, so the id of the last one seen is the cursor."""
    query = _filtered(select(AuditEntry), where)
    if cursor is not None:
        query = query.where(AuditEntry.id < _decode(cursor))
    entries = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    if len(entries) <= limit:
        return AuditPage(entries, None)
    return AuditPage(entries[:limit], str(entries[limit - 1].id))


CLOCK_SLACK = timedelta(minutes=1)
"""Entries are stamped by the process that writes them: allow for clocks a little apart."""


def job_entries(
    session: Session, job_id: str, project_id: str, since: datetime
) -> list[AuditEntry]:
    """A job's entries, oldest first (the newest ones if there are very many). A job id can
    be used again once its job is cleaned up (the `temporal` CLI names its own), and the
    trail outlives cleanup: only entries of the job's project, since it was created, are
    its own."""
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.job_id == job_id,
            AuditEntry.project_id == project_id,
            AuditEntry.at >= since - CLOCK_SLACK,
        )
        .order_by(AuditEntry.id.desc())
        .limit(JOB_ENTRIES_MAX)
    )
    return list(reversed(session.scalars(query).all()))


def delete_entries_before(session: Session, cutoff: datetime) -> int:
    """The retention: entries older than `cutoff` go; nothing else ever deletes one."""
    result = session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(getattr(result, "rowcount", 0))


def _filtered(query: Select[Any], where: AuditFilter) -> Select[Any]:
    if where.project_id is not None:
        query = query.where(AuditEntry.project_id == where.project_id)
    if where.job_id is not None:
        query = query.where(AuditEntry.job_id == where.job_id)
    if where.actions:
        query = query.where(AuditEntry.action.in_(where.actions))
    if where.actor_id is not None:
        query = query.where(AuditEntry.actor_id == where.actor_id)
    if where.channel is not None:
        query = query.where(AuditEntry.channel == where.channel)
    if where.at_from is not None:
        query = query.where(AuditEntry.at >= where.at_from)
    if where.at_to is not None:
        query = query.where(AuditEntry.at <= where.at_to)
    return query


def _decode(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidJobInput("The cursor is not one this API returned.")
    return int(cursor)
