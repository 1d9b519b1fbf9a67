"""Writing and reading a project's records in bulk, on SQLite and PostgreSQL.

Writes are upserts keyed by (project, key), so an import run twice, or resumed after
a crash, leaves exactly one record per key. PostgreSQL takes each batch by COPY (into
a staging table and one INSERT … ON CONFLICT when keys exist already); SQLite a few
multi-row INSERT … ON CONFLICT statements per batch.
"""

import json
import re
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import psycopg
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Record

_SQLITE_UPSERT = (
    "INSERT INTO records (project_id, key, data, updated_at) "
    "SELECT ?1, column1, column2, ?2 FROM (VALUES {rows}) WHERE true "
    "ON CONFLICT (project_id, key) DO UPDATE SET data = excluded.data, "
    "updated_at = excluded.updated_at"
)
"""A batch in one statement, its rows applied in order: executemany ran a statement per
row, each releasing and taking back the GIL, and so queued for it behind the thread
reading the next batch (`WHERE true` tells SQLite's parser the ON CONFLICT is the
upsert's, not a join's)."""
_PG_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS record_staging (key text, data jsonb) "
    "ON COMMIT DELETE ROWS"
)
_PG_ANY_PRESENT = (
    "SELECT 1 FROM unnest({keys}) AS batch(key), LATERAL (SELECT 1 FROM records "
    "WHERE project_id = %s AND key = batch.key LIMIT 1) AS found LIMIT 1"
)
"""One index lookup per key of the batch, whatever the planner guesses: `key = ANY(keys)`
was planned, without statistics on records just imported, as a filter over every record
of the project (the estimate said few), so that each batch cost more than the one before."""
_KEY_SEPARATOR = "\x1f"
"""The ASCII unit separator: no key of a real file holds it."""
_PG_MERGE = (
    "INSERT INTO records (project_id, key, data, updated_at) "
    "SELECT %s, key, data, %s FROM record_staging "
    "ON CONFLICT (project_id, key) DO UPDATE SET data = EXCLUDED.data, "
    "updated_at = EXCLUDED.updated_at"
)


def upsert_records(
    connection: Connection,
    project_id: str,
    rows: Sequence[tuple[str, str]],
    now: datetime,
    *,
    unseen: bool = False,
) -> bool:
    """Insert or replace `(key, JSON text)` rows; the last of equal keys wins.

    Documents come encoded by the reader, so that encoding happens while the previous
    batch is being written. SQLite applies the rows in order, so a later equal key
    overwrites an earlier one by itself; PostgreSQL's COPY and merge need them distinct.

    `unseen`: the caller knows of no record these keys could meet (its earlier batches
    of an import into a project that had none met none): PostgreSQL copies the batch
    without looking its keys up first. Returns whether that still holds after the batch
    (SQLite, whose upsert needs no lookup, returns it as given)."""
    if connection.dialect.name == "postgresql":
        return _upsert_postgresql(connection, project_id, dict(rows), now, unseen)
    _upsert_sqlite(connection, project_id, rows, now.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return unseen


def has_records(connection: Connection, project_id: str) -> bool:
    query = text("SELECT 1 FROM records WHERE project_id = :project LIMIT 1")
    return connection.execute(query, {"project": project_id}).first() is not None


def _upsert_sqlite(
    connection: Connection, project_id: str, rows: Sequence[tuple[str, str]], stamp: str
) -> None:
    """In statements of a power of two rows each, the largest first, up to what SQLite's
    limit of parameters lets (two a row, the project and the stamp shared): the
    connection's statement cache then holds a dozen shapes, not one per batch size (a
    compiled statement of 5,000 rows takes 1.4 MB)."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    most = (raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 2) // 2
    largest = 1 << (most.bit_length() - 1)
    start = 0
    while start < len(rows):
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        part = rows[start : start + size]
        values = ",".join(["(?,?)"] * size)
        raw.execute(
            _SQLITE_UPSERT.format(rows=values), (project_id, stamp, *chain.from_iterable(part))
        )
        start += size


def _upsert_postgresql(
    connection: Connection, project_id: str, rows: dict[str, str], now: datetime, unseen: bool
) -> bool:
    """COPY straight into the table when none of the keys exists yet, which is what a
    first import needs; otherwise merge through a staging table. A COPY that met an
    existing key would fail, and the server would log the error: the keys are looked up
    first, unless `unseen` says none can exist (the lookup cost a sixth of the batch's
    time on the server), so that a file repeating a key in a later batch is logged once,
    and otherwise only two imports racing on the same new keys can meet one."""
    raw = connection.connection.driver_connection
    assert raw is not None
    documents = list(rows.items())
    new = unseen or not _any_present(raw, project_id, list(rows))
    if new and _copy_new(raw, project_id, documents, now):
        return unseen
    _merge(raw, project_id, documents, now)
    return False


def _any_present(raw: psycopg.Connection[Any], project_id: str, keys: list[str]) -> bool:
    """The keys go as one text, split by the server: adapting a list of them to an array
    cost psycopg a regular expression per key. A list still when a key holds the separator."""
    joined = _KEY_SEPARATOR.join(keys)
    with raw.cursor() as cursor:
        if joined.count(_KEY_SEPARATOR) == len(keys) - 1:
            query = _PG_ANY_PRESENT.format(keys="string_to_array(%s, %s)")
            cursor.execute(query, (joined, _KEY_SEPARATOR, project_id))
        else:
            cursor.execute(_PG_ANY_PRESENT.format(keys="CAST(%s AS text[])"), (keys, project_id))
        return cursor.fetchone() is not None


def _copy_new(
    raw: psycopg.Connection[Any], project_id: str, documents: list[tuple[str, str]], now: datetime
) -> bool:
    """False, with nothing written (a savepoint), if a racing import added one of the keys."""
    direct = "COPY records (project_id, key, data, updated_at) FROM STDIN"
    data = copy_text(documents, lead=f"{copy_field(project_id)}\t", tail=f"\t{now.isoformat()}")
    try:
        with raw.transaction(), raw.cursor() as cursor, cursor.copy(direct) as copy:
            copy.write(data)
    except psycopg.errors.UniqueViolation:
        return False
    return True


_FIELD_END, _ROW_END = "\x00", "\x01"
"""What stands for the tab between fields and the newline between rows while a batch is
escaped in one piece. No document holds either (JSON text has no raw control character
but whitespace between tokens); a batch of which a key does is escaped field by field."""


def copy_text(rows: Sequence[Sequence[str]], lead: str = "", tail: str = "") -> str:
    """Rows of text fields in COPY's text format, each between `lead` and `tail` (in that
    format already: a project's id and a tab, a tab and a timestamp). Escaped as one text,
    a few passes at C speed instead of a call per field."""
    if not rows:
        return ""
    joined = _ROW_END.join(map(_FIELD_END.join, rows))
    fields = len(rows) * len(rows[0])
    if joined.count(_FIELD_END) + joined.count(_ROW_END) != fields - 1:
        return "".join(lead + "\t".join(map(copy_field, row)) + tail + "\n" for row in rows)
    escaped = copy_field(joined).replace(_FIELD_END, "\t")
    return lead + escaped.replace(_ROW_END, f"{tail}\n{lead}") + tail + "\n"


def copy_field(value: str) -> str:
    """A value in COPY's text format, written in one piece rather than row by row (the
    per-row adaptation cost more than the reading): backslashes and the characters that
    end a field or a row escaped. JSON text has no raw newline, but may have tabs and
    carriage returns between tokens when kept as written."""
    value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _merge(
    raw: psycopg.Connection[Any], project_id: str, documents: list[tuple[str, str]], now: datetime
) -> None:
    with raw.cursor() as cursor:
        cursor.execute(_PG_STAGING)
        with cursor.copy("COPY record_staging (key, data) FROM STDIN") as copy:
            for key, document in documents:
                copy.write_row((key, document))
        cursor.execute(_PG_MERGE, (project_id, now))


_scan_document: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_document(text: str) -> Any:
    """`json.loads(text)`, at a third of its cost for a stored document: the decoder's scan
    alone, without `loads`' two whitespace searches and wrappers (most of its time on a
    small document), since the import stores compact text. `loads` decides (and fails)
    whenever the scan alone could not say the whole text is one value."""
    try:
        document, end = _scan_document(text, 0)
    except StopIteration:
        return json.loads(text)
    return document if end == len(text) else json.loads(text)


_HAS_PREFIX = "substr({key}, 1, CAST(:prefix_length AS INTEGER)) = :prefix"
"""Whether a key starts with the prefix, exactly and case-sensitively on both databases:
SQLite's LIKE ignores case and PostgreSQL's does not, and a range of keys would follow
PostgreSQL's collation. Every query that filters by prefix uses this one test."""


def _prefix_params(prefix: str | None) -> dict[str, str | int]:
    """No prefix is the empty one, which every key starts with."""
    return {"prefix": prefix or "", "prefix_length": len(prefix or "")}


def count_records(
    session: Session,
    project_id: str,
    key_prefix: str | None = None,
    *,
    after_key: str | None = None,
    until_key: str | None = None,
) -> int:
    """Records of the project, those whose key has the prefix and lies in the range
    (`after_key` exclusive, `until_key` inclusive) when given."""
    query = select(func.count()).select_from(Record).where(Record.project_id == project_id)
    if key_prefix:
        has_prefix = text(_HAS_PREFIX.format(key="records.key"))
        query = query.where(has_prefix.bindparams(**_prefix_params(key_prefix)))
    if after_key is not None:
        query = query.where(Record.key > after_key)
    if until_key is not None:
        query = query.where(Record.key <= until_key)
    return int(session.scalar(query) or 0)


def count_by_project(session: Session, project_ids: Collection[str]) -> dict[str, int]:
    """Records per project, in one grouped query: a project without records is absent."""
    if not project_ids:
        return {}
    query = (
        select(Record.project_id, func.count())
        .where(Record.project_id.in_(project_ids))
        .group_by(Record.project_id)
    )
    return {project_id: int(count) for project_id, count in session.execute(query)}


_BATCH = (
    "SELECT key, {data} FROM records WHERE project_id = :project AND key > :after"
    "{prefix}{until} ORDER BY key LIMIT :limit"
)
_PREFIX = f" AND {_HAS_PREFIX.format(key='key')}"
"""Only with a prefix: PostgreSQL guesses such a test keeps few rows, and would then sort
the whole project for each batch instead of reading the key index."""
_UNTIL = " AND key <= :until"


_WALK_THE_INDEX = "SET LOCAL enable_sort = off"
"""A batch walks the (project, key) index in key order. Without statistics yet (records
just imported, before autovacuum's ANALYZE) PostgreSQL's planner guessed a handful of
rows and sorted the whole rest of the range for every batch: 60 times slower."""


def _batch_query(dialect: str, *, prefix: bool, until: bool, as_text: bool) -> str:
    """The batch query in the driver's own parameter style (sqlite3 takes `:name`,
    psycopg `%(name)s`): it runs on the driver's cursor."""
    sql = _BATCH.format(
        data="CAST(data AS TEXT) AS data" if as_text else "data",
        prefix=_PREFIX if prefix else "",
        until=_UNTIL if until else "",
    )
    return re.sub(r":(\w+)", r"%(\1)s", sql) if dialect == "postgresql" else sql


def _batch_params(
    project_id: str,
    after_key: str | None,
    until_key: str | None,
    key_prefix: str | None,
    batch_size: int,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "project": project_id,
        "after": after_key or "",
        "limit": batch_size,
        **_prefix_params(key_prefix),
    }
    if until_key is not None:
        params["until"] = until_key
    return params


def record_batches(
    db: Database,
    project_id: str,
    *,
    after_key: str | None = None,
    until_key: str | None = None,
    key_prefix: str | None = None,
    batch_size: int = 5000,
    as_text: bool = False,
) -> Iterator[list[tuple[str, Any]]]:
    """Records in key order, a batch per short read-only transaction (keyset pagination),
    from just after `after_key` up to `until_key` included (a partition's key range; None:
    to the end): memory stays flat and a resumed reader continues exactly.
    Plain SQL on the driver's cursor, decoded here: SQLAlchemy's rows, let alone the
    ORM's, would cost more than the reading.

    `as_text` gives each document as its JSON text, for a reader that decodes one at a
    time and drops it: a batch of decoded documents kept alive is what the garbage
    collector then walks over and over (a third of a validation's time)."""
    params = _batch_params(project_id, after_key, until_key, key_prefix, batch_size)
    dialect = db.engine.dialect.name
    query = _batch_query(
        dialect, prefix=bool(key_prefix), until=until_key is not None, as_text=as_text
    )
    while True:
        with db.reading() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            cursor = raw.cursor()
            try:
                if dialect == "postgresql":
                    cursor.execute(_WALK_THE_INDEX)
                cursor.execute(query, params)
                rows: list[tuple[str, Any]] = cursor.fetchall()
            finally:
                cursor.close()
        if not rows:
            return
        if as_text:
            yield rows
        else:
            yield [(key, json.loads(data) if isinstance(data, str) else data) for key, data in rows]
        if len(rows) < batch_size:
            return
        params["after"] = rows[-1][0]


_JOINED = "SELECT json_group_array(key), '[' || group_concat(data, ',') || ']' FROM ({batch})"
"""Both aggregates read the batch's rows in the one order of the subquery, key order."""


def joined_batches(
    db: Database,
    project_id: str,
    *,
    after_key: str | None = None,
    until_key: str | None = None,
    key_prefix: str | None = None,
    batch_size: int = 5000,
) -> Iterator[tuple[list[str], str]]:
    """SQLite's batches as `record_batches` reads them, each as its keys and its
    documents' JSON array text, both joined by SQLite: one row per batch, so that Python
    makes no tuple per record (they cost as much to make as the reading, and the garbage
    collector walks every one that lives), and the documents decode in one call."""
    params = _batch_params(project_id, after_key, until_key, key_prefix, batch_size)
    batch = _batch_query(
        "sqlite", prefix=bool(key_prefix), until=until_key is not None, as_text=True
    )
    query = _JOINED.format(batch=batch)
    while True:
        with db.reading() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            keys_text, documents = raw.execute(query, params).fetchone()
        keys: list[str] = json.loads(keys_text)
        if not keys:
            return
        yield keys, documents
        if len(keys) < batch_size:
            return
        params["after"] = keys[-1]


_KEY_AT = (
    "SELECT key FROM records WHERE project_id = :project "
    f"AND {_HAS_PREFIX.format(key='key')}{{after}} ORDER BY key LIMIT 1 OFFSET :offset"
)


def split_keys(
    session: Session, project_id: str, parts: int, total: int, key_prefix: str | None = None
) -> list[str]:
    """The keys that cut the project's `total` records (in key order) into `parts` ranges of
    nearly equal size: range i is (split[i-1], split[i]], the first from the start and the
    last to the end. Found by OFFSET on the (project, key) index, each cut from the one
    before, so that the index is walked once in all (from the start each time, the walks
    added up to `parts / 2` times the records: seconds at 5,000,000). The same on SQLite
    and PostgreSQL (a percentile over every key would sort them all). Fewer keys when
    records vanished meanwhile."""
    params: dict[str, Any] = {"project": project_id, **_prefix_params(key_prefix)}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_WALK_THE_INDEX))  # for the rest of the planning transaction
    first, then = text(_KEY_AT.format(after="")), text(_KEY_AT.format(after=" AND key > :after"))
    keys: list[str] = []
    at = 0
    for part in range(1, parts):
        cut = total * part // parts
        query, after = (then, {"after": keys[-1]}) if keys else (first, {})
        key = session.scalar(query, params | after | {"offset": cut - at - 1})
        if key is None:
            break
        keys.append(key)
        at = cut
    return keys


_FIELDS = {
    "postgresql": (
        "SELECT DISTINCT f FROM records, jsonb_object_keys("
        "CASE WHEN jsonb_typeof(data) = 'object' THEN data ELSE '{}' END) AS f "
        f"WHERE project_id = :project AND {_HAS_PREFIX.format(key='key')} ORDER BY f"
    ),
    "sqlite": (
        "SELECT DISTINCT j.key FROM records, json_each(records.data) AS j "
        f"WHERE records.project_id = :project AND {_HAS_PREFIX.format(key='records.key')} "
        "AND json_type(records.data) = 'object' ORDER BY j.key"
    ),
}


_NEW_FIELD = {
    "postgresql": (
        "SELECT data FROM records WHERE project_id = :project "
        f"AND {_HAS_PREFIX.format(key='key')} AND CASE WHEN jsonb_typeof(data) = 'object' "
        "THEN (data - CAST(:known AS text[])) <> '{{}}'::jsonb ELSE false END LIMIT 1"
    ),
    "sqlite": (
        "SELECT data FROM records WHERE project_id = :project "
        f"AND {_HAS_PREFIX.format(key='key')} AND CASE WHEN substr(data, 1, 1) = '{{{{' "
        "THEN json_remove(data{paths}) <> '{{}}' ELSE 0 END LIMIT 1"
    ),
}
"""Any record that has a field not yet known, in whatever order the table is read (a
sequential scan, parallel on PostgreSQL, is twice as fast as one in key order). SQLite
holds an object document as the import wrote it, starting with `{`: a test of the text
costs less than one that parses it."""
_WALK_SCANS = 8
"""Documents mostly share their fields: the first scan stops at once, the last reads every
record once, and few between find the rest. Fields that only rare, late records have
would take a scan each: beyond this many, the full listing is used."""
_SCAN_IN_PARALLEL = "SET LOCAL parallel_setup_cost = 0"
"""The walk's last scan reads every record, but the planner, seeing `LIMIT 1`, guesses it
stops early and reads alone: with parallel workers it takes about two thirds of the time
(200,000 records)."""
_WALK_LIMIT = 100
"""Beyond this many fields (and SQLite's function-argument limit) the full listing is used."""


def field_names(session: Session, project_id: str, key_prefix: str | None = None) -> list[str]:
    """The top-level field names of the documents, in name order, found by the database:
    a few short scans where it can, since listing every field of every document costs as
    much as an export."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text(_SCAN_IN_PARALLEL))  # for the rest of the caller's transaction
    found = _walk_fields(session, dialect, project_id, _prefix_params(key_prefix))
    if found is not None:
        return found
    sql = _FIELDS[dialect]
    return list(session.scalars(text(sql), {"project": project_id, **_prefix_params(key_prefix)}))


def first_fields(session: Session, project_id: str, key_prefix: str | None = None) -> list[str]:
    """The fields of the first document found that has any, in name order: the columns an
    export can start writing with while `field_names` confirms them (documents mostly
    share their fields); its first scan stops at once."""
    dialect = session.get_bind().dialect.name
    document = _with_new_field(session, dialect, project_id, _prefix_params(key_prefix), set())
    return sorted(document) if isinstance(document, dict) else []


def _walk_fields(
    session: Session, dialect: str, project_id: str, prefix: dict[str, str | int]
) -> list[str] | None:
    """The fields, one record with a new one at a time; None when the walk cannot say
    (many fields or scans, or names SQLite's paths cannot spell)."""
    known: set[str] = set()
    for _ in range(_WALK_SCANS):
        if len(known) > _WALK_LIMIT:
            return None
        if dialect == "sqlite" and not all(_plain_name(name) for name in known):
            return None
        document = _with_new_field(session, dialect, project_id, prefix, known)
        if document is None:
            return sorted(known)
        if set(document) <= known:
            return None  # a name the database spells differently: let it list them all
        known.update(document)
    return None


def _with_new_field(
    session: Session, dialect: str, project_id: str, prefix: dict[str, str | int], known: set[str]
) -> Any:
    """A document (an object) with a field not in `known`, decoded; None if there is none."""
    params: dict[str, Any] = {"project": project_id, **prefix}
    if dialect == "sqlite":
        paths = sorted(known)
        params.update({f"path{n}": f'$."{name}"' for n, name in enumerate(paths)})
        sql = _NEW_FIELD[dialect].format(paths="".join(f", :path{n}" for n in range(len(paths))))
    else:
        params["known"] = sorted(known)
        sql = _NEW_FIELD[dialect].format()
    row = session.execute(text(sql), params).first()
    if row is None:
        return None
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def _plain_name(name: str) -> bool:
    """Whether SQLite's quoted path label matches the name as the import wrote it."""
    return not any(c in '"\\' or c < " " for c in name)


_HAS_FIELD = {
    "postgresql": "jsonb_typeof(data) = 'object' AND jsonb_exists(data, :name)",
    "sqlite": "json_type(data, :path) IS NOT NULL",
}


def missing_fields(
    session: Session, project_id: str, names: Sequence[str], key_prefix: str | None = None
) -> list[str]:
    """The names, in their order, that no document has as a top-level field: one short
    scan each, which stops at the first document that has it."""
    dialect = session.get_bind().dialect.name
    base = f"SELECT 1 FROM records WHERE project_id = :project AND {_HAS_PREFIX.format(key='key')}"
    params: dict[str, Any] = {"project": project_id, **_prefix_params(key_prefix)}
    listed: set[str] | None = None
    missing = []
    for name in names:
        if dialect == "sqlite" and not _plain_name(name):
            listed = set(field_names(session, project_id, key_prefix)) if listed is None else listed
            found = name in listed
        else:
            sql = f"{base} AND {_HAS_FIELD[dialect]} LIMIT 1"
            bound = {
                **params,
                **({"path": f'$."{name}"'} if dialect == "sqlite" else {"name": name}),
            }
            found = session.execute(text(sql), bound).first() is not None
        if not found:
            missing.append(name)
    return missing


def keys_present(session: Session, project_id: str, keys: Sequence[str]) -> set[str]:
    query = select(Record.key).where(Record.project_id == project_id, Record.key.in_(keys))
    return set(session.scalars(query))
