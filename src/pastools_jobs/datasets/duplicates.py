"""The records a `unique` test must read: the database narrows, Python decides.

A split test run judges `unique` over the whole dataset in one activity (a key range
cannot: a value's first record may lie in another range). Reading every record in Python
is what a single activity does; here the database groups the records by a coarse key of
the field's value instead, and only the records of a group of two or more are read, in
key order, and judged by the very code a single activity runs (`Unique.judge`).

The coarse key is built so that two values the test deems equal (`json.dumps(value,
sort_keys=True)`) always share it; it may also join values the test tells apart (an
integer and a float, every object, every float on SQLite), which only costs reading
them. So the records read hold every repeated value with all its records, and the verdict,
the failing records, their order and `same_as` are those of a single activity:

- a string: its text; a boolean: itself; an object or array: its type alone;
- SQLite: an integer its value, any other number (`real`, as for Python's `json`: a
  fraction or an exponent) the one key `r`: SQLite's own parsing of decimals need not
  round as Python's does;
- PostgreSQL: a number its value as a double (`float8`, which PostgreSQL rounds correctly,
  as Python does), numbers beyond 1e300 or closer to zero than 1e-300 the one key `n`.

Two spellings of one double on either side of 1e±300, or a document that repeats the
field's name (PostgreSQL and Python keep the last, SQLite may read the first), are the
limits of "the same as a single activity"; SQLite cannot spell a field name holding `"` or
a backslash in a path, and such a test reads every record.

The grouping runs before the first record comes back (seconds for a million records): a
stop asked meanwhile interrupts the statement, so that a cancel still lands within a
heartbeat or two.
"""

import json
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from pastools_jobs.datasets.records import _plain_name, record_batches
from pastools_jobs.db.engine import Database
from pastools_jobs.db.interrupting import interrupted_by

_COARSE = {
    "postgresql": (
        "CASE jsonb_typeof(v) WHEN 'string' THEN 's' || (v #>> '{}') "
        "WHEN 'number' THEN CASE WHEN abs(CAST(v AS numeric)) BETWEEN 1e-300 AND 1e300 "
        "THEN 'n' || CAST(CAST(v AS float8) AS text) ELSE 'n' END "
        "WHEN 'boolean' THEN 'b' || CAST(v AS text) "
        "WHEN 'object' THEN 'o' WHEN 'array' THEN 'a' END"
    ),
    "sqlite": (
        "CASE json_type(data, :path) WHEN 'text' THEN 's' || json_extract(data, :path) "
        "WHEN 'integer' THEN 'i' || json_extract(data, :path) WHEN 'real' THEN 'r' "
        "WHEN 'true' THEN 't' WHEN 'false' THEN 'f' "
        "WHEN 'object' THEN 'o' WHEN 'array' THEN 'a' END"
    ),
}
"""NULL for a JSON null or a missing field: the test skips those."""

_VALUES = {
    "postgresql": (
        "SELECT key, {coarse} AS k FROM (SELECT key, data #> CAST(:path AS text[]) AS v "
        "FROM records WHERE project_id = :project) AS f"
    ),
    "sqlite": "SELECT key, {coarse} AS k FROM records WHERE project_id = :project",
}

_REPEATED = (
    "WITH coarse AS ({values}), "
    "candidates AS (SELECT key FROM coarse WHERE k IN "
    "(SELECT k FROM coarse WHERE k IS NOT NULL GROUP BY k HAVING count(*) > 1)) "
    "SELECT key, CAST(data AS TEXT) FROM records WHERE project_id = :project "
    "AND key IN (SELECT key FROM candidates) ORDER BY key"
)


def repeated_value_batches(
    db: Database,
    project_id: str,
    field: str,
    batch_size: int = 5000,
    stop: threading.Event | None = None,
) -> Iterator[list[tuple[str, Any]]]:
    """In key order, the records whose `field` may hold a value another record holds too
    (every record, when SQLite cannot spell the field's path). `stop` set: `Interrupted`."""
    dialect = db.engine.dialect.name
    parts = field.split(".")
    if dialect == "postgresql":
        path: Any = parts
    elif all(_plain_name(part) for part in parts):
        path = "$" + "".join(f'."{part}"' for part in parts)
    else:
        yield from record_batches(db, project_id, batch_size=batch_size)
        return
    values = _VALUES[dialect].format(coarse=_COARSE[dialect])
    query = text(_REPEATED.format(values=values))
    with db.reading() as connection, interrupted_by(stop or threading.Event(), connection):
        rows = connection.execution_options(stream_results=True, yield_per=batch_size).execute(
            query, {"project": project_id, "path": path}
        )
        for batch in rows.partitions(batch_size):
            yield [(key, json.loads(document)) for key, document in batch]
