"""How an export writes records: the one definition of its CSV and JSON Lines bytes and
of its Parquet table.

CSV has the key, then one column per field; a value that is not a string is written as
JSON, a missing one or null as nothing. A JSON Lines line is `{"key": …, "data": …}`,
and with chosen columns `data` holds exactly those fields, in their order, null where a
document has none. The database's fast paths (`export_copy`) reproduce these bytes;
whatever they cannot, they hand back to this encoder.
"""

import csv
import io
import json
from itertools import repeat
from typing import Any, Literal

import pyarrow as pa

ExportFormat = Literal["csv", "jsonl", "parquet"]

dumps = json.JSONEncoder(ensure_ascii=False).encode
"""json.dumps(value, ensure_ascii=False), with its encoder built once."""


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


CSV_QUOTES_LONE_CR = _csv_line(["\r", "x"]).startswith('"')
"""Whether this Python's csv module quotes a value whose only special character is a
carriage return (PostgreSQL's COPY always does): the fast path must know."""


def _plain(document: str) -> bool:
    """Whether a document's JSON text has only strings, numbers and nulls at its top
    level, which the csv module writes exactly as their JSON would be: no nested value,
    no boolean, no NaN or Infinity (a string holding those words only costs the slow way)."""
    return document.find("{", 1) < 0 and _scalars_only(document)


def _scalars_only(text: str) -> bool:
    """No array, boolean, NaN or Infinity anywhere in the text."""
    return (
        "[" not in text
        and "true" not in text
        and "false" not in text
        and "NaN" not in text
        and "Infinity" not in text
    )


def _decoded(stored: Any) -> Any:
    return json.loads(stored) if isinstance(stored, str) else stored


def cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else dumps(value)


class RecordEncoder:
    """Records to bytes (CSV, JSON Lines) or to a table (Parquet), for the given fields;
    `chosen` says the fields were asked for, which narrows JSON Lines' `data` too."""

    def __init__(self, export_format: ExportFormat, fields: list[str], *, chosen: bool) -> None:
        self.format = export_format
        self.fields = fields
        self.chosen = chosen

    def header(self) -> bytes:
        return _csv_line(["key", *self.fields]).encode() if self.format == "csv" else b""

    def encode(self, batch: list[tuple[str, Any]]) -> bytes:
        if self.format == "jsonl":
            return "".join(self.line(key, document) for key, document in batch).encode()
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.row(k, d) for k, d in batch)
        return buffer.getvalue().encode()

    def encode_texts(self, batch: list[tuple[str, Any]]) -> bytes:
        """Records as the database stores them (JSON text; SQLite gives a number document
        as a number): CSV rows of plain documents go to the csv module as decoded, without
        a look at each value."""
        if self.format != "csv":
            return self.encode([(key, _decoded(document)) for key, document in batch])
        flat = self._flat_rows(batch)
        if flat is not None:
            return flat
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = self.fields
        loads = json.loads
        for key, stored in batch:
            if stored.__class__ is not str:
                writer.writerow(self.row(key, stored))
                continue
            document = loads(stored)
            if document.__class__ is dict and _plain(stored):
                writer.writerow([key, *map(document.get, fields)])
            else:
                writer.writerow(self.row(key, document))
        return buffer.getvalue().encode()

    def _flat_rows(self, batch: list[tuple[str, Any]]) -> bytes | None:
        """A batch of plain objects only (what an import stores), written without a
        Python step per row: one `json.loads` of the whole batch, each field's column
        taken by C loops, the rows zipped into the csv module. None for any other batch.

        The whole batch's text holds as many `{` as documents, all of them objects: so no
        nested value and no `{` in a string (which only costs the slow way)."""
        if not batch:
            return None
        keys, texts = zip(*batch, strict=True)
        if set(map(type, texts)) != {str}:
            return None
        joined = ",".join(texts)
        if joined.count("{") != len(texts) or not _scalars_only(joined):
            return None
        documents = json.loads(f"[{joined}]")
        if set(map(type, documents)) != {dict}:
            return None
        columns = [map(dict.get, documents, repeat(name)) for name in self.fields]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(zip(keys, *columns, strict=True))
        return buffer.getvalue().encode()

    def line(self, key: str, document: Any) -> str:
        if self.chosen:
            values = document if isinstance(document, dict) else {}
            document = {name: values.get(name) for name in self.fields}
        return dumps({"key": key, "data": document}) + "\n"

    def row(self, key: str, document: Any) -> list[str]:
        values = document if isinstance(document, dict) else {}
        return [key, *(cell(values.get(name)) for name in self.fields)]

    def table(self, batch: list[tuple[str, Any]]) -> pa.Table:
        names = ["key", *self.fields]
        columns: list[list[str]] = [[] for _ in names]
        for key, document in batch:
            for column, value in zip(columns, self.row(key, document), strict=True):
                column.append(value)
        return pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})
