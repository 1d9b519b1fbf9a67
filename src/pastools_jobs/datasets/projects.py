"""Projects and their records, as the API and the jobs use them (no HTTP here)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pastools_jobs.audit.trail import Actor, AuditAction, record
from pastools_jobs.clock import utcnow
from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.records import count_by_project, count_records
from pastools_jobs.datasets.schema import compile_schema
from pastools_jobs.datasets.testsuite import TestSuite
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Project, Record
from pastools_jobs.domain import ProjectExists, ProjectNotFound, check_new_project_id


def create_project(session: Session, project_id: str, name: str | None) -> Project:
    check_new_project_id(project_id)
    if session.get(Project, project_id) is not None:
        raise ProjectExists(project_id)
    now = utcnow()
    project = Project(id=project_id, name=name, created_at=now, updated_at=now)
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: str, *, lock: bool = False) -> Project:
    project = session.get(Project, project_id, with_for_update=lock)
    if project is None:
        raise ProjectNotFound(project_id)
    return project


@dataclass(frozen=True)
class CountedProject:
    """A project with its number of records, as the API shows it."""

    project: Project
    records: int


def counted(session: Session, project: Project) -> CountedProject:
    return CountedProject(project, count_records(session, project.id))


def list_counted(session: Session, visible: Callable[[str], bool]) -> list[CountedProject]:
    """The visible projects in id order, their records counted together rather than one
    query per project."""
    listed = [p for p in session.scalars(select(Project).order_by(Project.id)) if visible(p.id)]
    counts = count_by_project(session, [p.id for p in listed])
    return [CountedProject(p, counts.get(p.id, 0)) for p in listed]


def set_schema(session: Session, project_id: str, schema: Any) -> Project:
    """Rejects an invalid schema now, rather than when a validation job meets it."""
    compile_schema(schema)
    project = get_project(session, project_id, lock=True)
    project.json_schema = schema
    project.updated_at = utcnow()
    return project


def set_test_suite(session: Session, project_id: str, suite: TestSuite) -> Project:
    """A relationship to a project that does not exist is refused now, as a 404."""
    for other in suite.other_projects():
        get_project(session, other)
    tests = [test.model_dump(mode="json") for test in suite.tests]
    project = get_project(session, project_id, lock=True)
    project.test_suite = tests
    project.updated_at = utcnow()
    return project


def set_column_types(
    session: Session, project_id: str, column_types: Mapping[str, ColumnType]
) -> Project:
    """The types imports coerce the project's columns to (an import's own win); {} clears."""
    project = get_project(session, project_id, lock=True)
    project.column_types = dict(column_types) or None
    project.updated_at = utcnow()
    return project


def records_page(
    session: Session, project_id: str, after_key: str | None, limit: int
) -> tuple[list[Record], str | None]:
    """Records in key order; the last key of a full page is the cursor of the next."""
    get_project(session, project_id)
    query = select(Record).where(Record.project_id == project_id)
    if after_key is not None:
        query = query.where(Record.key > after_key)
    records = list(session.scalars(query.order_by(Record.key).limit(limit + 1)))
    if len(records) <= limit:
        return records, None
    return records[:limit], records[limit - 1].key


def get_record(session: Session, project_id: str, key: str) -> Record:
    record = session.get(Record, (project_id, key))
    if record is None:
        get_project(session, project_id)
        raise ProjectNotFound(project_id, key)
    return record


class ProjectService:
    """What users do to projects, each call one transaction off the event loop: the routes
    ask, and never hold a session themselves."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, project_id: str, name: str | None, actor: Actor) -> CountedProject:
        def create(session: Session) -> Project:
            project = create_project(session, project_id, name)
            record(session, actor, AuditAction.PROJECT_CREATE, project_id=project_id)
            return project

        return CountedProject(await self._db.run(create), 0)

    async def visible(self, sees: Callable[[str], bool]) -> list[CountedProject]:
        return await self._db.run(lambda s: list_counted(s, sees))

    async def require(self, project_id: str) -> None:
        """Raises ProjectNotFound; counts nothing."""
        await self._db.run(lambda s: get_project(s, project_id))

    async def get(self, project_id: str) -> CountedProject:
        return await self._db.run(lambda s: counted(s, get_project(s, project_id)))

    async def set_schema(self, project_id: str, schema: Any, actor: Actor) -> CountedProject:
        def change(session: Session) -> CountedProject:
            project = set_schema(session, project_id, schema)
            record(session, actor, AuditAction.PROJECT_SCHEMA, project_id=project_id)
            return counted(session, project)

        return await self._db.run(change)

    async def set_test_suite(
        self, project_id: str, suite: TestSuite, actor: Actor
    ) -> CountedProject:
        def change(session: Session) -> CountedProject:
            project = set_test_suite(session, project_id, suite)
            names = [test.name for test in suite.tests]
            details = {"tests": names}
            record(
                session, actor, AuditAction.PROJECT_TESTS, project_id=project_id, details=details
            )
            return counted(session, project)

        return await self._db.run(change)

    async def set_column_types(
        self, project_id: str, column_types: Mapping[str, ColumnType], actor: Actor
    ) -> CountedProject:
        def change(session: Session) -> CountedProject:
            project = set_column_types(session, project_id, column_types)
            details = {"column_types": dict(column_types)}
            record(
                session,
                actor,
                AuditAction.PROJECT_COLUMN_TYPES,
                project_id=project_id,
                details=details,
            )
            return counted(session, project)

        return await self._db.run(change)

    async def records_page(
        self, project_id: str, after_key: str | None, limit: int
    ) -> tuple[list[Record], str | None]:
        return await self._db.run(lambda s: records_page(s, project_id, after_key, limit))

    async def record(self, project_id: str, key: str) -> Record:
        return await self._db.run(lambda s: get_record(s, project_id, key))
