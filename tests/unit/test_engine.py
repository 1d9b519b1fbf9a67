"""A transaction opens only off the event loop, so that no coroutine can hold one across
an `await` on Temporal or another service; `Database.run` is the way in from async code."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pastools_jobs.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", application_name="pastools-tests")
    yield database
    database.dispose()


OPENERS: dict[str, Callable[[Database], AbstractContextManager[Any]]] = {
    "transaction": Database.transaction,
    "writing": Database.writing,
    "reading": Database.reading,
}


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
def test_a_coroutine_cannot_open_a_transaction(
    db: Database, opener: Callable[[Database], AbstractContextManager[Any]]
) -> None:
    async def inline() -> None:
        with opener(db):
            raise AssertionError("opened on the event loop")

    with pytest.raises(RuntimeError, match=r"await db\.run"):
        asyncio.run(inline())


def test_a_coroutine_runs_its_transaction_through_run(db: Database) -> None:
    def select_one(session: Session) -> int:
        return int(session.execute(text("SELECT 1")).scalar_one())

    assert asyncio.run(db.run(select_one)) == 1


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
def test_sync_code_and_threads_open_transactions(
    db: Database, opener: Callable[[Database], AbstractContextManager[Any]]
) -> None:
    def select_one() -> int:
        with opener(db) as connection:
            return int(connection.execute(text("SELECT 1")).scalar_one())

    async def in_thread() -> int:
        return await asyncio.to_thread(select_one)

    assert select_one() == 1
    assert asyncio.run(in_thread()) == 1
