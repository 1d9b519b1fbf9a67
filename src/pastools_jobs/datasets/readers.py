"""Streaming readers of import sources: CSV, JSON Lines and Parquet.

Each reader yields batches of parsed rows and, after each batch, the position just
past it, so an import can commit a batch, heartbeat that position, and a retried
attempt can seek straight back there. Memory holds one batch, whatever the file size.
Rows the input got wrong are reported with their line and reason, never raised.
"""

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow.parquet as pq

SourceFormat = Literal["csv", "jsonl", "parquet"]

encode_document = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""One encoder for all rows: json.dumps with options builds a new one per call."""


class SourceUnusable(Exception):
    """The whole source is wrong (no header, no key column, unreadable format)."""


@dataclass(frozen=True)
class Position:
    """Where the next batch starts: byte offset, physical line and data rows read."""

    offset: int = 0
    line: int = 0
    rows: int = 0


@dataclass
class RowError:
    line: int
    reason: str


@dataclass
class Batch:
    rows: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, key, the document as JSON text)"""
    errors: list[RowError] = field(default_factory=list)
    end: Position = field(default_factory=Position)


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"


def infer_format(path: Path) -> SourceFormat:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    return "csv"


def read_batches(
    path: Path,
    source_format: SourceFormat,
    start: Position,
    batch_rows: int,
    key_column: str | None,
    csv_options: CsvOptions,
) -> Iterator[Batch]:
    if source_format == "csv":
        return _CsvReader(path, csv_options, key_column).batches(start, batch_rows)
    if source_format == "jsonl":
        return _jsonl_batches(path, start, batch_rows, key_column)
    return _parquet_batches(path, start, batch_rows, key_column)


def _key(value: Any, key_column: str | None, row_number: int) -> str | None:
    """The record key: the key column's value, or the row number when none is chosen."""
    if key_column is None:
        return str(row_number)
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)


class _Lines:
    """Decoded physical lines of a binary file, counting bytes and lines consumed."""

    def __init__(self, stream: BinaryIO, encoding: str, position: Position) -> None:
        self._stream = stream
        self._encoding = encoding
        self.offset = position.offset
        self.line = position.line
        stream.seek(position.offset)

    def __iter__(self) -> Iterator[str]:
        encoding = self._encoding
        for raw in self._stream:
            self.offset += len(raw)
            self.line += 1
            yield raw.decode(encoding, "surrogateescape")


_UNDECODED = re.compile("[\udc80-\udcff]")


def _undecodable(values: list[str]) -> bool:
    """Bytes the encoding could not decode survive as lone surrogates (surrogateescape)."""
    return _UNDECODED.search("\x00".join(values)) is not None


class _CsvReader:
    def __init__(self, path: Path, options: CsvOptions, key_column: str | None) -> None:
        self._path = path
        self._options = options
        self._key_column = key_column
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise SourceUnusable(f"unknown encoding '{options.encoding}'") from None

    def _reader(self, lines: _Lines) -> Iterator[list[str]]:
        return csv.reader(
            lines,
            delimiter=self._options.delimiter,
            quotechar=self._options.quotechar,
            strict=True,
        )

    def _header(self, stream: BinaryIO) -> tuple[list[str], Position]:
        lines = _Lines(stream, self._options.encoding, Position())
        try:
            header = next(self._reader(lines))
        except StopIteration:
            raise SourceUnusable("the file is empty: a header row is expected") from None
        except csv.Error as error:
            raise SourceUnusable(f"line 1: the header cannot be read ({error})") from None
        if _undecodable(header):
            raise SourceUnusable(f"line 1: not valid {self._options.encoding}")
        header = [name.strip().lstrip("\ufeff") for name in header]
        if self._key_column is not None and self._key_column not in header:
            raise SourceUnusable(f"the key column '{self._key_column}' is not in the header")
        if len(set(header)) != len(header):
            raise SourceUnusable("the header names a column twice")
        return header, Position(lines.offset, lines.line, 0)

    def batches(self, start: Position, batch_rows: int) -> Iterator[Batch]:
        with self._path.open("rb") as stream:
            header, after_header = self._header(stream)
            key_index = header.index(self._key_column) if self._key_column else None
            position = start if start.offset > after_header.offset else after_header
            lines = _Lines(stream, self._options.encoding, position)
            reader = self._reader(lines)
            rows = position.rows
            batch = Batch()
            while True:
                first_line = lines.line + 1
                try:
                    values = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    rows += 1
                    batch.errors.append(RowError(first_line, f"malformed CSV ({error})"))
                    reader = self._reader(lines)
                else:
                    if not values or values == [""]:
                        continue
                    rows += 1
                    self._add(batch, values, header, key_index, first_line, rows)
                if len(batch.rows) + len(batch.errors) >= batch_rows:
                    batch.end = Position(lines.offset, lines.line, rows)
                    yield batch
                    batch = Batch()
            batch.end = Position(lines.offset, lines.line, rows)
            yield batch

    def _add(
        self,
        batch: Batch,
        values: list[str],
        header: list[str],
        key_index: int | None,
        line: int,
        row_number: int,
    ) -> None:
        if _undecodable(values):
            batch.errors.append(RowError(line, f"not valid {self._options.encoding}"))
        elif len(values) != len(header):
            batch.errors.append(
                RowError(line, f"expected {len(header)} fields, found {len(values)}")
            )
        else:
            value = values[key_index] if key_index is not None else None
            key = _key(value, self._key_column, row_number)
            if key is None:
                batch.errors.append(RowError(line, f"the key column '{self._key_column}' is empty"))
            else:
                document = dict(zip(header, values, strict=True))
                batch.rows.append((line, key, encode_document(document)))


def _jsonl_batches(
    path: Path, start: Position, batch_rows: int, key_column: str | None
) -> Iterator[Batch]:
    with path.open("rb") as stream:
        stream.seek(start.offset)
        offset, line, rows = start.offset, start.line, start.rows
        batch = Batch()
        for raw in stream:
            offset += len(raw)
            line += 1
            if not raw.strip():
                continue
            rows += 1
            _add_json_line(batch, raw, line, rows, key_column)
            if len(batch.rows) + len(batch.errors) >= batch_rows:
                batch.end = Position(offset, line, rows)
                yield batch
                batch = Batch()
        batch.end = Position(offset, line, rows)
        yield batch


def _add_json_line(
    batch: Batch, raw: bytes, line: int, row_number: int, key_column: str | None
) -> None:
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        batch.errors.append(RowError(line, "not valid UTF-8"))
        return
    except json.JSONDecodeError as error:
        batch.errors.append(RowError(line, f"not valid JSON ({error.msg})"))
        return
    if not isinstance(document, dict):
        batch.errors.append(RowError(line, f"a JSON {type(document).__name__}, not an object"))
        return
    key = _key(document.get(key_column) if key_column else None, key_column, row_number)
    if key is None:
        batch.errors.append(RowError(line, f"the key field '{key_column}' is missing or empty"))
        return
    batch.rows.append((line, key, text.strip()))  # valid JSON already: kept as written


def _parquet_batches(
    path: Path, start: Position, batch_rows: int, key_column: str | None
) -> Iterator[Batch]:
    try:
        source = pq.ParquetFile(path)
    except Exception as error:
        raise SourceUnusable(f"not a readable Parquet file ({error})") from None
    if key_column is not None and key_column not in source.schema_arrow.names:
        raise SourceUnusable(f"the key column '{key_column}' is not in the file")
    rows = 0
    for record_batch in source.iter_batches(batch_size=batch_rows):
        first = rows
        rows += record_batch.num_rows
        if rows <= start.rows:
            continue
        batch = Batch()
        for index, document in enumerate(record_batch.to_pylist(), start=first + 1):
            if index <= start.rows:
                continue
            key = _key(document.get(key_column) if key_column else None, key_column, index)
            if key is None:
                batch.errors.append(RowError(index, f"the key column '{key_column}' is empty"))
            else:
                batch.rows.append((index, key, _jsonable(document)))
        batch.end = Position(0, rows, rows)
        yield batch


def _jsonable(document: dict[str, Any]) -> str:
    """Parquet values that JSON has no type for (dates, decimals, bytes) as strings."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)
