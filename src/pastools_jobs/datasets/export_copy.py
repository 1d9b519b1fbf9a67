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
COPY quotes. Each leaves a mark in the bytes (`0.0000`, a carriage return, the NULL
string), looked for in the whole batch at once; the encoder writes a row that has one
(or seems to: a string holding `0.0000` only costs the slow way) from its document, read
on a second connection (the first one is busy with the COPY). The server does no more
than build the cells, which a test of each cell there would nearly double.
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
"""COPY's NULL string (no cell is NULL): it keeps empty strings unquoted, as the csv
module writes them, and only a cell equal to it is quoted."""
_SMALL_NUMBER = b"0.0000"
"""How PostgreSQL writes every number whose magnitude is below 1e-4 (and a few others)."""
_DIFFERENCES = {
    "csv": (_SMALL_NUMBER, MARKER.encode(), *(() if CSV_QUOTES_LONE_CR else (b"\r",))),
    "jsonl": (_SMALL_NUMBER,),
}
"""What a row that COPY writes otherwise than the encoder holds, per format (JSON text
escapes a carriage return, and a line has no NULL)."""


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
    return EncodedBatch(
        _rewrite_differing(raw, selection.project_id, rows, encoder), len(rows), last
    )


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
    if encoder.format == "csv":
        return str(next(csv.reader([row.decode()]))[0])
    return str(json.loads(row)["key"])


def _rewrite_differing(
    raw: Opener, project_id: str, rows: list[bytes], encoder: RecordEncoder
) -> bytes:
    """The batch's bytes, each row that may differ written by the encoder from its
    document (one deleted since the COPY began is left out, as it would be then)."""
    data = b"".join(rows)
    marks = _DIFFERENCES[encoder.format]
    if not any(mark in data for mark in marks):  # searches in C, not a look at every row
        return data
    differing = {
        n: _key_of(row, encoder) for n, row in enumerate(rows) if any(m in row for m in marks)
    }
    with raw() as connection, connection.cursor() as cursor:
        found = cursor.execute(
            "SELECT key, data FROM records WHERE project_id = %s AND key = ANY(%s)",
            (project_id, list(differing.values())),
        ).fetchall()
    documents = dict(found)
    for n, key in differing.items():
        rows[n] = encoder.encode([(key, documents[key])]) if key in documents else b""
    return b"".join(rows)


def _csv_statement(fields: list[str], where: str) -> tuple[str, list[Any]]:
    cells = "".join(", coalesce(data->>%s, '')" for _ in fields)
    sql = (
        f"COPY (SELECT key{cells} FROM records WHERE {where} ORDER BY key) "
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
    line = f"'{{\"key\": ' || to_json(key)::text || ', \"data\": ' || {document} || '}}'"
    sql = (
        f"COPY (SELECT {line} FROM records WHERE {where} ORDER BY key) "
        "TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    )
    return sql, extra
