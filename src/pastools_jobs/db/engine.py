"""Engines and sessions for SQLite (embedded default) and PostgreSQL (psycopg)."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pastools_jobs.logs import connection_name

T = TypeVar("T")

PG_CONNECT_TIMEOUT_SECONDS = 5


def create_db_engine(url: str, application_name: str) -> Engine:
    """An engine tuned for concurrent API, worker and mirror writers. PostgreSQL shows
    `application_name` (with the replica, `connection_name`) in pg_stat_activity and its
    logs, so that an operator can tell the processes apart; SQLite has no such thing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # Pre-ping drops connections a restarted server closed; the connect timeout keeps a
    # server that does not answer from holding requests for the kernel's TCP timeout.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": PG_CONNECT_TIMEOUT_SECONDS,
            "application_name": connection_name(application_name),
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; the busy timeout makes writers queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLAlchemy then emits BEGIN itself (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None


READ_ONLY = "pastools_read_only"


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock up front: a deferred transaction that later writes can fail
    at once with "database is locked" instead of waiting for the busy timeout.
    Read-only work (`Database.reading`) takes no lock and runs beside the writer."""
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _refuse_on_event_loop() -> None:
    """A transaction opens only off the event loop, so no coroutine can hold one across
    an `await` (a Temporal, HTTP or object-store call) with its locks and connection."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "A database transaction was opened on a thread running an event loop: a step "
        "talks to the database or to another service, never holds one while waiting on "
        "the other. Use `await db.run(work)`, or asyncio.to_thread for Core work."
    )


class Database:
    """One engine and its session factory; `transaction()` is the unit of work. Its
    transactions open only off the event loop: sync code, `run`, `asyncio.to_thread`."""

    def __init__(self, url: str, *, application_name: str) -> None:
        self.engine = create_db_engine(url, application_name)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        _refuse_on_event_loop()
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction on a Core connection, without the ORM's unit of work: cheaper
        for hot-path writes made of Core statements only (a job's progress)."""
        _refuse_on_event_loop()
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not block the writer."""
        _refuse_on_event_loop()
        options = {READ_ONLY: True}
        with self.engine.connect().execution_options(**options) as connection, connection.begin():
            yield connection

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, off the event loop."""

        def in_transaction() -> T:
            with self.transaction() as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work` that only reads, in one read-only transaction, off the event loop: on
        SQLite it takes no write lock, so a long write (a big import's move) does not
        keep the API's answers waiting, nor they the writer."""

        def in_transaction() -> T:
            with (
                self.reading() as connection,
                Session(connection, expire_on_commit=False) as session,
            ):
                return work(session)

        return await asyncio.to_thread(in_transaction)

    def dispose(self) -> None:
        self.engine.dispose()
