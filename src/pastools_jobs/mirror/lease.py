"""One mirror at a time: a lease row in the jobs database, on the database's clock.

Whoever holds the lease renews it well before it expires; anyone may take it once it
has expired. Taking and renewing are one statement that compares with the database's
own clock, so the replicas' clocks never matter. The holder counts its lease valid for
the TTL from the moment it *sent* the statement (a monotonic clock, never the wall
clock), which ends no later than the row's expiry: a holder that hung (SIGSTOP, a long
pause) knows on waking that it no longer leads, before a successor can have taken over.
The same code runs on SQLite and PostgreSQL.
"""

import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import MirrorLease as LeaseRow

_SQLITE_TIME = "%Y-%m-%d %H:%M:%f"


def replica_id() -> str:
    """Who holds the lease: host and process, for an operator; a random part, so that a
    restarted process with the same pid is someone else."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(self, db: Database, name: str, holder: str, ttl_seconds: float) -> None:
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self._db = db
        self._valid_until = 0.0
        # A release waits for a claim in flight (a cancelled task's thread goes on), so
        # that the claim cannot put the row back after it.
        self._statement = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this holder may work: its last claim succeeded less than a TTL ago."""
        return time.monotonic() < self._valid_until

    def claim(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is this holder's;
        returns whether this holder holds it now. A database error leaves what the holder
        knew as it was: a leader goes on until its lease runs out."""
        with self._statement:
            sent = time.monotonic()  # before the statement: the row's expiry is later
            with self._db.writing() as connection:
                statement = self._claim(connection.dialect.name)
                taken = connection.execute(statement).first() is not None
            self._valid_until = sent + self.ttl_seconds if taken else 0.0
        return taken

    def release(self) -> None:
        """Give the lease up (a clean stop), so that another replica takes it at once."""
        with self._statement, self._db.writing() as connection:
            self._valid_until = 0.0
            connection.execute(
                delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
            )

    def leader(self) -> str | None:
        """Who holds the lease now, by the database's clock (None: nobody, or expired)."""
        with self._db.reading() as connection:
            now, _ = self._clock(connection.dialect.name)
            return connection.execute(
                select(LeaseRow.holder).where(LeaseRow.name == self.name, LeaseRow.expires_at > now)
            ).scalar_one_or_none()

    def _claim(self, dialect: str) -> Any:
        now, expiry = self._clock(dialect)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(LeaseRow).values(name=self.name, holder=self.holder, expires_at=expiry)
        return statement.on_conflict_do_update(
            index_elements=[LeaseRow.name],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=(LeaseRow.holder == statement.excluded.holder) | (LeaseRow.expires_at < now),
        ).returning(LeaseRow.holder)

    def _clock(self, dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """The database's now, and now plus the TTL. SQLite keeps times as text; these
        have millisecond digits, which compare (as text) in time order."""
        if dialect == "postgresql":
            now = func.now()
            return now, now + literal(timedelta(seconds=self.ttl_seconds))
        return (
            func.strftime(_SQLITE_TIME, "now"),
            func.strftime(_SQLITE_TIME, "now", f"+{self.ttl_seconds:.3f} seconds"),
        )
