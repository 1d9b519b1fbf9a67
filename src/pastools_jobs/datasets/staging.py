"""The staging area of `replace` and `insert-only` imports, on SQLite and PostgreSQL.

Their batches go into `staged_records`, keyed by job and record key (a batch applied
twice, by a retry, changes nothing), and nothing of the project changes until the end:
then one transaction moves them into `records` (replace: instead of the project's
records; insert-only: beside them) and marks the staging swapped, so that a retry after
that transaction makes it no second time; the moved rows are deleted after it, a chunk a
transaction (`clear_swapped`), so that the move holds SQLite's write lock no longer than
it must. A failed or cancelled import leaves the project's records as they were, and its
staged rows are deleted (or, at the latest, go with the job's row).

Every bulk delete here goes by chunks on SQLite: with foreign keys on, SQLite lists every
row a DELETE removes before removing any, about 24 bytes a row in the worker's memory
(120 MB for 5,000,000 staged rows).

A partitioned import (any mode) stages too, each partition its byte range of the file:
a key staged twice keeps the row of the higher line (`WHERE excluded.line > line`),
whichever partition came first, so that the move applies the last row in file order,
and `upsert` moves like a batch upsert.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, TextClause, bindparam, text

from pastools_jobs.datasets.records import copy_text
from pastools_jobs.db.models import UTCDateTime

StagedMode = Literal["replace", "insert-only", "upsert"]

_SQLITE_STAGE = (
    "INSERT INTO staged_records (job_id, key, line, data) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (job_id, key) DO UPDATE SET line = excluded.line, data = excluded.data "
    "WHERE excluded.line > staged_records.line"
)
_PG_BATCH = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS staged_batch (key text, line bigint, data jsonb) "
    "ON COMMIT DELETE ROWS"
)
_PG_STAGE = (
    "INSERT INTO staged_records (job_id, key, line, data) "
    "SELECT %s, key, line, data FROM staged_batch "
    "ON CONFLICT (job_id, key) DO UPDATE SET line = EXCLUDED.line, data = EXCLUDED.data "
    "WHERE EXCLUDED.line > staged_records.line"
)
_UNSWAPPED = "(SELECT job_id FROM import_stagings WHERE swapped_at IS NULL)"
"""Stagings not moved yet: moved rows stay until cleared, and are in the records then."""
_SWAPPED = "(SELECT job_id FROM import_stagings WHERE swapped_at IS NOT NULL)"
_CONFLICTS = (
    "SELECT s.line, s.key FROM staged_records s JOIN records r "
    "ON r.project_id = :project AND r.key = s.key "
    f"WHERE s.job_id = :job AND s.job_id IN {_UNSWAPPED} ORDER BY s.line LIMIT :limit"
)
_COUNT_CONFLICTS = (
    "SELECT count(*) FROM staged_records s JOIN records r "
    "ON r.project_id = :project AND r.key = s.key "
    f"WHERE s.job_id = :job AND s.job_id IN {_UNSWAPPED}"
)
_MOVE = (
    "INSERT INTO records (project_id, key, data, updated_at) "
    "SELECT :project, key, data, :now FROM staged_records WHERE job_id = :job "
    "ON CONFLICT (project_id, key) DO NOTHING"
)
_MOVE_UPSERT = (
    "INSERT INTO records (project_id, key, data, updated_at) "
    "SELECT :project, key, data, :now FROM staged_records WHERE job_id = :job "
    "ON CONFLICT (project_id, key) DO UPDATE SET data = excluded.data, "
    "updated_at = excluded.updated_at"
)


@dataclass(frozen=True)
class Swapped:
    """What the move did, kept with the staging for a retry to report."""

    written: int
    conflicts: int


def open_staging(
    connection: Connection, job_id: str, run_id: str, project_id: str, fresh: bool
) -> Swapped | None:
    """Make the job's staging area for this run of it; `fresh` (no checkpoint to resume
    from) empties it of an earlier attempt's rows. Returns what the move did if this run
    made it already. A retry of the job is a new run, which starts afresh: it may import
    another file, or the same one changed."""
    row = connection.execute(
        text(
            "SELECT run_id, swapped_at, written, conflicts FROM import_stagings WHERE job_id = :job"
        ),
        {"job": job_id},
    ).first()
    if row is None or (row.run_id or run_id) != run_id:  # (None: made before runs counted)
        reset_staging(connection, job_id, run_id, project_id)
        return None
    if row.swapped_at is not None:
        return Swapped(row.written, row.conflicts)
    if row.run_id is None:
        connection.execute(
            text("UPDATE import_stagings SET run_id = :run WHERE job_id = :job"),
            {"job": job_id, "run": run_id},
        )
    if fresh:
        _delete_where(connection, "staged_records", "job_id = :job", {"job": job_id})
    return None


def reset_staging(connection: Connection, job_id: str, run_id: str, project_id: str) -> None:
    """The job's staging area made empty for this run, whatever an earlier run left in it
    (a split import's plan comes before any move of its run)."""
    params = {"job": job_id, "run": run_id, "project": project_id}
    reset = connection.execute(
        text(
            "UPDATE import_stagings SET run_id = :run, project_id = :project, "
            "swapped_at = NULL, written = 0, conflicts = 0 WHERE job_id = :job"
        ),
        params,
    )
    if reset.rowcount:
        _delete_where(connection, "staged_records", "job_id = :job", {"job": job_id})
        return
    connection.execute(
        text(
            "INSERT INTO import_stagings (job_id, run_id, project_id, written, conflicts) "
            "VALUES (:job, :run, :project, 0, 0)"
        ),
        params,
    )


def stage_records(
    connection: Connection, job_id: str, rows: Sequence[tuple[int, str, str]]
) -> None:
    """(line, key, JSON text) rows; of equal keys the highest line wins, as the last row
    does in an upsert.
    PostgreSQL takes them by COPY into a temporary table, then one INSERT."""
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(
            _SQLITE_STAGE, [(job_id, key, line, document) for line, key, document in rows]
        )
        return
    latest = {key: (line, document) for line, key, document in rows}
    data = copy_text([(key, str(line), document) for key, (line, document) in latest.items()])
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(_PG_BATCH)
        with cursor.copy("COPY staged_batch (key, line, data) FROM STDIN") as copy:
            copy.write(data)
        cursor.execute(_PG_STAGE, (job_id,))


def find_conflicts(
    connection: Connection, job_id: str, project_id: str, limit: int
) -> tuple[int, list[tuple[int, str]]]:
    """Staged rows whose key the project has already: how many, and the first `limit`
    (line, key) in line order."""
    params = {"job": job_id, "project": project_id}
    count = int(connection.execute(text(_COUNT_CONFLICTS), params).scalar_one())
    found = connection.execute(text(_CONFLICTS), {**params, "limit": limit}).all()
    return count, [(int(line), str(key)) for line, key in found]


def swap_in(
    connection: Connection,
    job_id: str,
    project_id: str,
    mode: StagedMode,
    now: datetime,
) -> Swapped:
    """The move, in the caller's transaction: replace deletes the project's records
    first; insert-only keeps them (a key taken meanwhile by another import stays
    theirs, and counts as a conflict with those found before: every staged row is
    either written or counted); upsert overwrites the keys it has. The staging row is
    locked first, so two attempts never both move. The staged rows stay, for
    `clear_swapped`."""
    lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
    row = connection.execute(
        text(
            f"SELECT swapped_at, written, conflicts FROM import_stagings WHERE job_id = :job{lock}"
        ),
        {"job": job_id},
    ).one()
    if row.swapped_at is not None:
        return Swapped(row.written, row.conflicts)
    if mode == "replace":
        _delete_where(connection, "records", "project_id = :project", {"project": project_id})
    params = {"job": job_id, "project": project_id, "now": now}
    staged = int(
        connection.execute(
            text("SELECT count(*) FROM staged_records WHERE job_id = :job"), {"job": job_id}
        ).scalar_one()
    )
    move = _MOVE_UPSERT if mode == "upsert" else _MOVE
    written = connection.execute(_stamped(move), params).rowcount
    conflicts = staged - written
    connection.execute(
        _stamped(
            "UPDATE import_stagings SET swapped_at = :now, written = :written, "
            "conflicts = :conflicts WHERE job_id = :job"
        ),
        {"job": job_id, "now": now, "written": written, "conflicts": conflicts},
    )
    return Swapped(written, conflicts)


def _stamped(sql: str) -> TextClause:
    """`:now` bound as the tables' timestamps are, on both databases."""
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime()))


def clear_swapped(connection: Connection, job_id: str) -> int:
    """Deletes a chunk of the staged rows of a job whose move happened, in the caller's
    transaction; how many. Repeat, a transaction each, until none is left: a retry of a
    move that died meanwhile finds the move done and clears the rest."""
    swapped = f"job_id = :job AND job_id IN {_SWAPPED}"
    return _delete_chunk(connection, "staged_records", swapped, {"job": job_id})


def discard_staging(connection: Connection, job_id: str) -> None:
    """A failed or cancelled import's staged rows (its swap never happened)."""
    unswapped = f"job_id = :job AND job_id IN {_UNSWAPPED}"
    _delete_where(connection, "staged_records", unswapped, {"job": job_id})
    connection.execute(
        text("DELETE FROM import_stagings WHERE job_id = :job AND swapped_at IS NULL"),
        {"job": job_id},
    )


_DELETE_CHUNK_ROWS = 20_000


def _delete_where(connection: Connection, table: str, where: str, params: dict[str, str]) -> None:
    """Every row of `table` that matches `where`, in the caller's transaction: by chunks
    on SQLite, so that its list of rows to delete stays small; at once on PostgreSQL."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"DELETE FROM {table} WHERE {where}"), params)
        return
    while _delete_chunk(connection, table, where, params):
        pass


def _delete_chunk(connection: Connection, table: str, where: str, params: dict[str, str]) -> int:
    """Up to `_DELETE_CHUNK_ROWS` rows of `table` that match `where`; how many."""
    rowid = "ctid" if connection.dialect.name == "postgresql" else "rowid"
    chunk = f"SELECT {rowid} FROM {table} WHERE {where} LIMIT {_DELETE_CHUNK_ROWS}"
    return connection.execute(
        text(f"DELETE FROM {table} WHERE {rowid} IN ({chunk})"), params
    ).rowcount
