"""PostgreSQL's fast path for CSV and JSON Lines exports: the server builds the bytes.

One `COPY (SELECT … ORDER BY key) TO STDOUT` reads the whole range, as pg_dump would (one
read transaction for the export; the server scans the table in its physical order and
sorts, where batches in key order would fetch its pages out of order once it outgrows
shared buffers): for CSV one column per field (`data->>'field'`, quoted by COPY as the csv
module quotes), for JSON Lines the whole line built from the stored document's text.
Python only moves bytes: COPY sends one message per row, so the stream is cut into
batches of whole rows, counted without parsing; a batch's last key is its checkpoint, and
a retried attempt starts a new COPY after it.

The server's text matches what `RecordEncoder` writes except in a few places: a number
below 1e-4 (PostgreSQL writes 0.00001 where Python writes 1e-05), a lone carriage return
(COPY quotes it; Python before 3.13 does not), a cell equal to COPY's NULL string, which
COPY quotes. The server marks such a row (its key in hex after `MARKER`, at the start of
the row, where no other row can have it), and the encoder writes it instead, from the
document read on a second connection (the first one is busy with the COPY).
"""

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from pastools_jobs.datasets.export_encoding import CSV_QUOTES_LONE_CR, RecordEncoder, dumps

MARKER = "~pastools-export-row~"
"""Starts a row the encoder must write. As COPY's NULL string (no cell is NULL) it keeps
empty strings unquoted, as the csv module writes them."""
_MARKER = MARKER.encode()
_SMALL_NUMBER = "0.0000"
"""How PostgreSQL writes every number whose magnitude is below 1e-4 (and a few others)."""


Opener = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
"""Opens a psycopg connection in a read-only transaction."""


@dataclass(frozen=True)
class KeyRange:
    """The records an export reads, up to `until_key` (inclusive) when given; where it
    starts (exclusive) is the reader's position."""

    project_id: str
    key_prefix: str | None
    until_key: str | None
    batch_size: int


@dataclass(frozen=True)
class EncodedBatch:
    """A batch's bytes, how many rows it holds and its last key: a checkpoint's position."""

    data: bytes
    rows: int
    last_key: str


def copy_batches(
    raw: Opener,
    selection: KeyRange,
    encoder: RecordEncoder,
    after_key: str | None,
) -> Iterator[EncodedBatch]:
    """The records after `after_key`, in key order, in batches of `batch_size` rows cut
    from one COPY on the connection `raw` opens (one read transaction for them all)."""
    where, params = _filter(selection, after_key or "")
    if encoder.format == "csv":
        sql, extra = _csv_statement(encoder.fields, where)
    else:
        sql, extra = _jsonl_statement(encoder, where)
    size = selection.batch_size
    rows: list[bytes] = []
    with (
        raw() as connection,
        connection.cursor() as cursor,
        cursor.copy(sql, [*extra, *params]) as copy,
    ):
        for row in copy:
            rows.append(bytes(row))
            if len(rows) == size:
                yield _batch(raw, selection, rows, encoder)
                rows = []
    if rows:
        yield _batch(raw, selection, rows, encoder)


def _batch(
    raw: Opener, selection: KeyRange, rows: list[bytes], encoder: RecordEncoder
) -> EncodedBatch:
    last = _key_of(rows[-1], encoder)
    return EncodedBatch(_resolve_marked(raw, selection.project_id, rows, encoder), len(rows), last)


def _filter(selection: KeyRange, after: str) -> tuple[str, list[Any]]:
    """No prefix test without a prefix: the planner would guess such a test keeps few
    rows, and choose its plan on that guess."""
    sql = "project_id = %s AND key > %s"
    params: list[Any] = [selection.project_id, after]
    if selection.key_prefix:
        sql += " AND substr(key, 1, %s) = %s"
        params += [len(selection.key_prefix), selection.key_prefix]
    if selection.until_key is not None:
        sql += " AND key <= %s"
        params.append(selection.until_key)
    return sql, params


def _key_of(row: bytes, encoder: RecordEncoder) -> str:
    if row.startswith(_MARKER):
        return _marked_key(row)
    if encoder.format == "csv":
        return str(next(csv.reader([row.decode()]))[0])
    return str(json.loads(row)["key"])


def _marked_key(row: bytes) -> str:
    return bytes.fromhex(row[len(_MARKER) :].split(b",", 1)[0].strip().decode()).decode()


def _resolve_marked(
    raw: Opener, project_id: str, rows: list[bytes], encoder: RecordEncoder
) -> bytes:
    """The batch's bytes, each marked row written by the encoder from its document."""
    data = b"".join(rows)
    if _MARKER not in data:  # one search in C, not a look at every row
        return data
    marked = {n: _marked_key(row) for n, row in enumerate(rows) if row.startswith(_MARKER)}
    if marked:
        with raw() as connection, connection.cursor() as cursor:
            found = cursor.execute(
                "SELECT key, data FROM records WHERE project_id = %s AND key = ANY(%s)",
                (project_id, list(marked.values())),
            ).fetchall()
        documents = dict(found)
        for n, key in marked.items():  # one deleted meanwhile is left out, as it would be
            rows[n] = encoder.encode([(key, documents[key])]) if key in documents else b""
    return b"".join(rows)


_MARKED = f"'{MARKER}' || encode(convert_to(key, 'UTF8'), 'hex')"


def _differs(column: str) -> str:
    """Whether COPY would write this CSV cell otherwise than the csv module (or than
    Python would write the number in it)."""
    test = f"strpos({column}, '{_SMALL_NUMBER}') > 0 OR {column} = '{MARKER}'"
    if not CSV_QUOTES_LONE_CR:
        test += f" OR strpos({column}, E'\\r') > 0"
    return test


def _csv_statement(fields: list[str], where: str) -> tuple[str, list[Any]]:
    names = [f"c{n}" for n in range(len(fields))]
    cells = "".join(f", coalesce(data->>%s, '') AS {name}" for name in names)
    differs = " OR ".join([f"strpos(key, '{MARKER}') = 1", *map(_differs, ["key", *names])])
    sql = (
        f"COPY (SELECT CASE WHEN {differs} THEN {_MARKED} ELSE key END"
        f"{''.join(', ' + name for name in names)} FROM ("
        f"SELECT key{cells} FROM records WHERE {where} ORDER BY key"
        ") AS cells ORDER BY cells.key) "
        f"TO STDOUT WITH (FORMAT csv, NULL '{MARKER}')"
    )
    return sql, list(fields)


def _jsonl_statement(encoder: RecordEncoder, where: str) -> tuple[str, list[Any]]:
    """The line is one text column; COPY's CSV quoting is turned off by quote and
    delimiter characters that JSON text always escapes. A line starts with `{`."""
    document, extra = "data::text", []
    if encoder.chosen:
        pieces = []
        for n, name in enumerate(encoder.fields):
            pieces.append("%s || coalesce((data->%s)::text, 'null')")
            extra += [("" if n == 0 else ", ") + dumps(name) + ": ", name]
        document = "'{' || " + " || ".join(pieces) + " || '}'" if pieces else "'{}'"
    line = "'{\"key\": ' || to_json(key)::text || ', \"data\": ' || document || '}'"
    sql = (
        f"COPY (SELECT CASE WHEN strpos(document, '{_SMALL_NUMBER}') > 0 THEN {_MARKED} "
        f"ELSE {line} END FROM (SELECT key, {document} AS document FROM records "
        f"WHERE {where} ORDER BY key) AS lines ORDER BY lines.key) "
        "TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    )
    return sql, extra
