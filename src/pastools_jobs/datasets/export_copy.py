"""PostgreSQL's fast path for CSV and JSON Lines exports: the server builds the bytes.

Each batch is a key range read by `COPY (SELECT …) TO STDOUT`: for CSV one column per
field (`data->>'field'`, quoted by COPY as the csv module quotes), for JSON Lines the
whole line built from the stored document's text. Python only moves bytes.

The server's text matches what `RecordEncoder` writes except in a few places: a number
below 1e-4 (PostgreSQL writes 0.00001 where Python writes 1e-05), a lone carriage return
(COPY quotes it; Python before 3.13 does not), and any cell holding the marker below.
Such a row is written as a marker line carrying its key and document in hex, and
replaced here by the encoder's own bytes. Each COPY data message is one row, so a
marker is always at the start of one.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from pastools_jobs.datasets.export_encoding import CSV_QUOTES_LONE_CR, RecordEncoder, dumps

MARKER = "~pastools-export-row~"
"""A row the encoder must write: no cell of a row written by the server contains it,
and as COPY's NULL string it never matches a value, so an empty string is unquoted."""
_MARKER = MARKER.encode()
_PIECE_BYTES = 4 << 20
"""Rows are handed on in pieces of about this size: memory stays flat, whatever the batch."""
_SMALL_NUMBER = "0.0000"
"""How PostgreSQL writes every number whose magnitude is below 1e-4 (and a few others)."""


@dataclass(frozen=True)
class KeyRange:
    """The records an export reads: `after_key` exclusive, `until_key` inclusive."""

    project_id: str
    key_prefix: str | None
    until_key: str | None
    batch_size: int


@dataclass(frozen=True)
class EncodedPiece:
    """Encoded rows; the last piece of a batch also says how many rows and up to which
    key the batch went, the only positions a checkpoint may name."""

    data: bytes
    rows: int = 0
    last_key: str | None = None


def copy_batches(
    raw: Any, selection: KeyRange, encoder: RecordEncoder, after_key: str | None
) -> Iterator[EncodedPiece]:
    """The records after `after_key`, in key order, batch by batch; `raw` opens a
    psycopg connection for each batch (a short read-only transaction)."""
    after = after_key or ""
    while True:
        with raw() as connection:
            rows, last = _bounds(connection, selection, after)
            if not rows:
                return
            yield from _copy(connection, selection, encoder, after, last)
        yield EncodedPiece(b"", rows, last)
        if rows < selection.batch_size:
            return
        after = last


def _filter(selection: KeyRange, after: str, last: str | None) -> tuple[str, list[Any]]:
    prefix = selection.key_prefix or ""
    sql = "project_id = %s AND key > %s AND substr(key, 1, %s) = %s"
    params: list[Any] = [selection.project_id, after, len(prefix), prefix]
    upper = last if last is not None else selection.until_key
    if upper is not None:
        sql += " AND key <= %s"
        params.append(upper)
    return sql, params


def _bounds(connection: psycopg.Connection[Any], selection: KeyRange, after: str) -> Any:
    """How many rows the next batch has and its last key: an index-only look."""
    where, params = _filter(selection, after, None)
    sql = (
        f"SELECT count(*), max(key) FROM (SELECT key FROM records WHERE {where} "
        "ORDER BY key LIMIT %s) AS batch"
    )
    with connection.cursor() as cursor:
        return cursor.execute(sql, [*params, selection.batch_size]).fetchone()


def _copy(
    connection: psycopg.Connection[Any],
    selection: KeyRange,
    encoder: RecordEncoder,
    after: str,
    last: str,
) -> Iterator[EncodedPiece]:
    where, params = _filter(selection, after, last)
    if encoder.format == "csv":
        sql, extra = _csv_statement(encoder.fields, where)
    else:
        sql, extra = _jsonl_statement(encoder, where)
    parts: list[bytes] = []
    size = 0
    with connection.cursor() as cursor, cursor.copy(sql, [*extra, *params]) as copy:
        for part in copy:
            parts.append(bytes(part))
            size += len(part)
            if size >= _PIECE_BYTES:
                yield EncodedPiece(_replace_markers(b"".join(parts), encoder))
                parts, size = [], 0
    yield EncodedPiece(_replace_markers(b"".join(parts), encoder))


_MARKED = (
    f"'{MARKER}' || encode(convert_to(key, 'UTF8'), 'hex') || ':' "
    "|| encode(convert_to(data::text, 'UTF8'), 'hex')"
)


def _needs_encoder(column: str) -> str:
    test = f"strpos({column}, '{MARKER}') > 0 OR strpos({column}, '{_SMALL_NUMBER}') > 0"
    if not CSV_QUOTES_LONE_CR:
        test += f" OR strpos({column}, E'\\r') > 0"
    return test


def _csv_statement(fields: list[str], where: str) -> tuple[str, list[Any]]:
    cells = ", ".join(f"data->>%s AS c{n}" for n in range(len(fields)))
    suspect = " OR ".join(
        _needs_encoder(c) for c in ["key", *(f"c{n}" for n in range(len(fields)))]
    )
    written = ", ".join(
        f"CASE WHEN suspect THEN '' ELSE coalesce(c{n}, '') END" for n in range(len(fields))
    )
    sql = (
        f"COPY (SELECT CASE WHEN suspect THEN {_MARKED} ELSE key END, {written} "
        f"FROM (SELECT *, ({suspect}) AS suspect FROM ("
        f"SELECT key, data, {cells} FROM records WHERE {where} ORDER BY key OFFSET 0"
        ") AS cells OFFSET 0) AS checked ORDER BY key) "
        f"TO STDOUT WITH (FORMAT csv, NULL '{MARKER}')"
    )
    return sql, list(fields)


def _jsonl_statement(encoder: RecordEncoder, where: str) -> tuple[str, list[Any]]:
    """The line is one text column; COPY's CSV quoting is turned off by quote and
    delimiter characters that JSON text always escapes."""
    document, extra = "data::text", []
    if encoder.chosen:
        pieces = []
        for n, name in enumerate(encoder.fields):
            pieces.append("%s || coalesce((data->%s)::text, 'null')")
            extra += [("" if n == 0 else ", ") + dumps(name) + ": ", name]
        document = "'{' || " + " || ".join(pieces) + " || '}'" if pieces else "'{}'"
    line = "'{\"key\": ' || to_json(key)::text || ', \"data\": ' || document || '}'"
    suspect = f"{_needs_encoder('document')} OR strpos(key, '{MARKER}') > 0"
    sql = (
        f"COPY (SELECT CASE WHEN {suspect} THEN {_MARKED} ELSE {line} END FROM ("
        f"SELECT key, data, {document} AS document FROM records WHERE {where} "
        "ORDER BY key OFFSET 0) AS lines ORDER BY key) "
        "TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    )
    return sql, extra


def _replace_markers(data: bytes, encoder: RecordEncoder) -> bytes:
    """Each marker line replaced by the encoder's bytes for the record it carries."""
    at = data.find(_MARKER)
    if at < 0:
        return data
    pieces: list[bytes] = []
    start = 0
    while at >= 0:
        end = data.index(b"\n", at)
        payload = data[at + len(_MARKER) : end].split(b",", 1)[0]
        key, document = (bytes.fromhex(part.decode()).decode() for part in payload.split(b":"))
        pieces += [data[start:at], encoder.encode([(key, json.loads(document))])]
        start = end + 1
        at = data.find(_MARKER, start)
    pieces.append(data[start:])
    return b"".join(pieces)
