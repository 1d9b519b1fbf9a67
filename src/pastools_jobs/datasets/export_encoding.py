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
import math
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


def _scalars_only(array: str) -> bool:
    """No array but the outer one, no boolean, NaN or Infinity anywhere in the text."""
    return (
        array.count("[") == 1
        and "true" not in array
        and "false" not in array
        and "NaN" not in array
        and "Infinity" not in array
    )


def _commas_in_values(documents: str, decoded: list[dict[str, Any]]) -> bool:
    """Whether the array's text has more commas than its objects' members need (a comma
    in a field's name, which only costs the csv module's way, counts too)."""
    between = sum(map(len, decoded)) - 1 + decoded.count({})
    return documents.count(",") > between


_AS_CELL: dict[Any, str] = {None: "", math.inf: "Infinity", -math.inf: "-Infinity"}
"""The values a plain document's column holds that `cell` writes otherwise than `str` and
the csv module do: null, and the infinity a number beyond a float's range decodes to (a
JSON Lines import keeps a line as written, `1e400` too). Looked up per cell at C speed."""


def _joined_rows(keys: list[str], columns: list[list[Any]]) -> str | None:
    """Plain rows joined by `str.join`, a third faster than the csv module, which writes
    the same when no cell needs quoting: then the text has exactly one comma between
    cells and one newline per row, and no quote or carriage return. None when a cell
    does, or when there is no column (the csv module quotes a lone empty key)."""
    if not columns:
        return None
    cells = (map(str, map(_AS_CELL.get, column, column)) for column in columns)
    text = "\n".join(map(",".join, zip(keys, *cells, strict=True))) + "\n"
    commas = text.count(",") == len(keys) * len(columns)
    if commas and text.count("\n") == len(keys) and '"' not in text and "\r" not in text:
        return text
    return None


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
        self.seen: set[str] = set()
        """The fields of the documents `encode_array` decoded: how an export that started
        with the first record's fields learns, at C speed, whether others have more."""

    def header(self) -> bytes:
        return _csv_line(["key", *self.fields]).encode() if self.format == "csv" else b""

    def encode(self, batch: list[tuple[str, Any]]) -> bytes:
        if self.format == "jsonl":
            return "".join(self.line(key, document) for key, document in batch).encode()
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.row(k, d) for k, d in batch)
        return buffer.getvalue().encode()

    def encode_array(self, keys: list[str], documents: str) -> bytes:
        """Records given as their keys and their documents' JSON array text (SQLite joins
        a batch so): a CSV batch of plain objects only (what an import stores) is written
        without a Python step per row, each field's column taken by C loops; any other
        batch as its decoded documents.

        Plain: the text holds one `{` per document, all of them objects, so no nested
        value and no `{` in a string (which only costs the slow way), and no array,
        boolean, NaN or Infinity, which the csv module would not write as JSON does."""
        decoded = json.loads(documents)
        plain = documents.count("{") == len(decoded) and _scalars_only(documents)
        if self.format != "csv" or not plain or set(map(type, decoded)) != {dict}:
            self.seen.update(*(document for document in decoded if isinstance(document, dict)))
            return self.encode(list(zip(keys, decoded, strict=True)))
        self.seen.update(*decoded)
        columns = [list(map(dict.get, decoded, repeat(name))) for name in self.fields]
        joined = None if _commas_in_values(documents, decoded) else _joined_rows(keys, columns)
        if joined is not None:
            return joined.encode()
        buffer = io.StringIO()
        cells = (map(_AS_CELL.get, column, column) for column in columns)
        csv.writer(buffer, lineterminator="\n").writerows(zip(keys, *cells, strict=True))
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
