"""Batch upserts of records on both databases: the last of equal keys wins, whether the
batch was copied as new or merged, and however SQLite cuts it into statements."""

import json
import sqlite3

import pytest

from pastools_jobs.clock import utcnow
from pastools_jobs.datasets.records import has_records, upsert_records
from pastools_jobs.db.engine import Database
from tests.unit.test_import_staging import project_with, stored


def upsert(db: Database, project: str, rows: list[tuple[str, dict]], unseen: bool) -> bool:
    with db.transaction() as session:
        documents = [(key, json.dumps(doc)) for key, doc in rows]
        return upsert_records(session.connection(), project, documents, utcnow(), unseen=unseen)


def test_new_keys_leave_the_batch_unseen(db: Database) -> None:
    project = project_with(db, {})
    with db.transaction() as session:
        assert not has_records(session.connection(), project)

    assert upsert(db, project, [("a", {"v": 1}), ("b", {"v": 1}), ("a", {"v": 2})], True)

    assert stored(db, project) == {"a": {"v": 2}, "b": {"v": 1}}
    with db.transaction() as session:
        assert has_records(session.connection(), project)


def test_an_unseen_batch_that_meets_a_key_is_merged(db: Database) -> None:
    """A file repeating a key of an earlier batch: the later row wins, and PostgreSQL
    looks keys up again from then on (SQLite's upsert never looks them up)."""
    project = project_with(db, {"a": {"v": 1}})

    still_unseen = upsert(db, project, [("b", {"v": 2}), ("a", {"v": 2})], True)

    assert still_unseen == (db.engine.dialect.name == "sqlite")
    assert stored(db, project) == {"a": {"v": 2}, "b": {"v": 2}}


def test_a_sqlite_batch_beyond_the_parameter_limit(db: Database) -> None:
    """Cut into statements of a power of two rows each, as many as the limit lets,
    applied in order."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's limit of parameters per statement")
    project = project_with(db, {"k3": {"v": 0}})
    rows = [(f"k{i % 4}", {"v": i}) for i in range(1, 10)]  # k1 … k3, k0, k1 … : 3 rounds
    with db.transaction() as session:
        raw = session.connection().connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 8)  # 2 rows a statement
        try:
            documents = [(key, json.dumps(doc)) for key, doc in rows]
            upsert_records(session.connection(), project, documents, utcnow())
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)

    assert stored(db, project) == {"k0": {"v": 8}, "k1": {"v": 9}, "k2": {"v": 6}, "k3": {"v": 7}}
