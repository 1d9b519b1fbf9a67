"""Streaming readers of import sources: CSV, JSON Lines and Parquet.

Each reader yields batches of parsed rows and, after each batch, the position just
past it, so an import can commit a batch, heartbeat that position, and a retried
attempt can seek straight back there. Memory holds one batch, whatever the file size:
a batch ends at `batch_rows` rows or `batch_bytes` of documents, and a record (a line,
a CSV record, a Parquet row) past `record_bytes` is refused before it is held. Rows the
input got wrong are reported with their line and reason, never raised; a source that
cannot be read at all (empty, binary, an archive, a record past the limit) raises
SourceUnusable saying why.
"""

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO, Literal

from pastools_jobs.datasets.coercion import ColumnType, NotCoercible, decode_json
from pastools_jobs.datasets.lines import LineReader, TextEncoding, count_lines, text_encoding
from pastools_jobs.datasets.parquet_reader import parquet_batches
from pastools_jobs.datasets.reading import (
    RECORD_LIMIT_SETTING,
    Batch,
    Position,
    ReadLimits,
    RowError,
    SourceUnusable,
    cell_error,
    describe_size,
    record_key,
)
from pastools_jobs.datasets.shaping import (
    CellError,
    ColumnPlan,
    CsvShaper,
    Misfits,
    encode_document,
    plan_columns,
    shape_json,
)
from pastools_jobs.datasets.sniffing import Dialect, sniff_dialect, sniff_encoding

SourceFormat = Literal["csv", "jsonl", "parquet"]


@dataclass(frozen=True)
class CsvOptions:
    """None: detected from the file's first bytes (datasets/sniffing.py)."""

    delimiter: str | None = ","
    quotechar: str | None = '"'
    encoding: str | None = "utf-8"


@dataclass(frozen=True)
class Shaping:
    """How values become typed: the defaults are what imports did before types existed
    (every CSV value a string), for runs begun then."""

    null_values: tuple[str, ...] = ()
    """CSV values that become null."""
    column_types: dict[str, ColumnType] = field(default_factory=dict)
    """Declared types (any format)."""
    infer_types: bool = False
    """Infer the other CSV columns' types from the first `infer_rows` rows."""
    infer_rows: int = 1000


@dataclass(frozen=True)
class SourceDescription:
    """What the reader found or guessed, for the result: each option with whether it
    was given or detected, and each column's type plan."""

    encoding: str | None = None
    delimiter: str | None = None
    quotechar: str | None = None
    detected: tuple[str, ...] = ()
    columns: dict[str, ColumnPlan] = field(default_factory=dict)


@dataclass
class Reading:
    description: SourceDescription
    batches: Iterator[Batch]


def infer_format(source: str) -> SourceFormat:
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    return "csv"


def read_batches(
    stream: BinaryIO,
    source_format: SourceFormat,
    start: Position,
    key_column: str | None,
    csv_options: CsvOptions,
    limits: ReadLimits,
    shaping: Shaping = Shaping(),
    end_offset: int | None = None,
    end_row: int | None = None,
) -> Reading:
    """Batches from an open source; the caller owns (and closes) the stream.

    A CSV or JSON Lines source can be read in part: from `start.offset` (a line's
    start; `start.line` 0 past the header means "count the lines before it") up to the
    first line boundary at or after `end_offset`; a Parquet file from the row after
    `start.rows` up to row `end_row`, a row group's last. Every row keeps its absolute
    line (a Parquet row its number)."""
    declared = shaping.column_types
    if source_format == "parquet":
        check_content(stream, source_format, "utf-8")
        batches = parquet_batches(stream, start, key_column, limits, declared, end_row)
        return Reading(_declared_only(declared), batches)
    given = csv_options.encoding if source_format == "csv" else "utf-8"
    encoding = given or sniff_encoding(_head(stream))
    check_content(stream, source_format, encoding)
    text = text_encoding(stream, encoding)
    if start.offset and not start.line:
        start = Position(start.offset, count_lines(stream, text, start.offset), start.rows)
    if source_format == "jsonl":
        jsonl = _jsonl_batches(stream, start, key_column, limits, declared, end_offset)
        return Reading(_declared_only(declared), jsonl)
    dialect = sniff_dialect(
        _head(stream).decode(text.codec, "replace"), csv_options.delimiter, csv_options.quotechar
    )
    reader = _CsvReader(stream, (dialect, encoding), text, key_column, limits)
    plans = reader.plan(shaping)
    detected = tuple(name for name, value in vars(csv_options).items() if value is None)
    description = SourceDescription(encoding, dialect.delimiter, dialect.quotechar, detected, plans)
    return Reading(description, reader.batches(start, shaping, plans, end_offset))


def _declared_only(declared: dict[str, ColumnType]) -> SourceDescription:
    columns = {name: ColumnPlan(kind, "declared") for name, kind in declared.items()}
    return SourceDescription(columns=columns)


def _head(stream: BinaryIO) -> bytes:
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    return head


_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive",
    b"PK\x05\x06": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive",
    b"\xfd7zXZ\x00": "an xz archive",
    b"\x28\xb5\x2f\xfd": "a Zstandard archive",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"PAR1": "a Parquet file",
    b"%PDF-": "a PDF document",
}
"""Magic bytes of files people rename by mistake (or on purpose: a zip bomb as .csv)."""
SNIFF_BYTES = 8192
_FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSON Lines", "parquet": "Parquet"}


def check_content(stream: BinaryIO, source_format: SourceFormat, encoding: str) -> None:
    """Judge the content, not the extension: an archive is refused before it is read."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise SourceUnusable(f"unknown encoding '{encoding}'") from None
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    if not head:
        raise SourceUnusable("the file is empty")
    if source_format == "parquet":
        return
    expected = _FORMAT_NAMES[source_format]
    for magic, kind in _SIGNATURES.items():
        if head.startswith(magic):
            raise SourceUnusable(f"the file looks like {kind}, not {expected}")
    wide = codec.name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in head:
        raise SourceUnusable(f"the file looks like binary data, not {expected} text")


class _Lines:
    """Decoded physical lines of a binary file, counting bytes and lines consumed.

    The CSV reader calls `start_record` before each record: `undecodable_at` is then the
    file offset of the first byte the encoding could not decode in the record, and a
    record spanning lines (quoted newlines) is refused past the record limit.
    """

    def __init__(
        self, stream: BinaryIO, encoding: TextEncoding, position: Position, record_bytes: int
    ) -> None:
        self._reader = LineReader(stream, encoding, position.offset, record_bytes)
        self._codec = encoding.codec
        self._record_bytes = record_bytes
        self.offset = position.offset
        self.line = position.line
        self.start_record()

    def start_record(self) -> None:
        self.undecodable_at: int | None = None
        self._record_offset = self.offset
        self._record_line = self.line + 1

    def __iter__(self) -> Iterator[str]:
        read, codec = self._reader.read, self._codec  # once per line: looked up once
        while raw := read(self.line + 1):
            if self.offset + len(raw) - self._record_offset > self._record_bytes:
                raise SourceUnusable(
                    f"the record from line {self._record_line} to line {self.line + 1} is "
                    f"longer than the {describe_size(self._record_bytes)} limit "
                    f"({RECORD_LIMIT_SETTING})"
                )
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as error:
                text = self._undecodable(raw, error)
            self.offset += len(raw)
            self.line += 1
            yield text

    def _undecodable(self, raw: bytes, error: UnicodeDecodeError) -> str:
        if self.undecodable_at is None:
            self.undecodable_at = self.offset + error.start
        return raw.decode(self._codec, "replace")


class _CsvReader:
    def __init__(
        self,
        stream: BinaryIO,
        dialect: tuple[Dialect, str],
        encoding: TextEncoding,
        key_column: str | None,
        limits: ReadLimits,
    ) -> None:
        """`dialect`: the delimiter and quote character, and the encoding's name as given."""
        self._stream = stream
        self._dialect, self._encoding_name = dialect
        self._encoding = encoding
        self._key_column = key_column
        self._limits = limits

    def _lines(self, position: Position) -> _Lines:
        return _Lines(self._stream, self._encoding, position, self._limits.record_bytes)

    def _reader(self, lines: _Lines) -> Iterator[list[str]]:
        return csv.reader(
            lines,
            delimiter=self._dialect.delimiter,
            quotechar=self._dialect.quotechar,
            strict=True,
        )

    def _header(self) -> tuple[list[str], Position]:
        lines = self._lines(Position())
        try:
            header = next(self._reader(lines))
        except StopIteration:
            raise SourceUnusable("the file is empty: a header row is expected") from None
        except csv.Error as error:
            raise SourceUnusable(f"line 1: the header cannot be read ({error})") from None
        if lines.undecodable_at is not None:
            raise SourceUnusable(f"line 1: {self._invalid(lines.undecodable_at)}")
        header = [name.strip().lstrip("\ufeff") for name in header]
        if self._key_column is not None and self._key_column not in header:
            raise SourceUnusable(f"the key column '{self._key_column}' is not in the header")
        if len(set(header)) != len(header):
            raise SourceUnusable("the header names a column twice")
        return header, Position(lines.offset, lines.line, 0)

    def _invalid(self, offset: int) -> str:
        return f"not valid {self._encoding_name} at byte {offset}"

    def plan(self, shaping: Shaping) -> dict[str, ColumnPlan]:
        """Each column's type: declared, or inferred from the first rows."""
        header, after_header = self._header()
        unknown = sorted(set(shaping.column_types) - set(header))
        if unknown:
            raise SourceUnusable(f"declared column types name no column of the header: {unknown}")
        sample: list[list[str]] = []
        if shaping.infer_types:
            sample = self._sample(after_header, shaping.infer_rows)
        nulls = frozenset(shaping.null_values)
        return plan_columns(header, shaping.column_types, shaping.infer_types, sample, nulls)

    def _sample(self, after_header: Position, rows: int) -> list[list[str]]:
        """The first rows' values; a malformed row or the record limit ends the sample
        (the import itself will report them)."""
        sample: list[list[str]] = []
        reader = self._reader(self._lines(after_header))
        try:
            for values in reader:
                sample.append(values)
                if len(sample) >= rows:
                    break
        except (csv.Error, SourceUnusable):
            pass
        return sample

    def batches(
        self,
        start: Position,
        shaping: Shaping,
        plans: dict[str, ColumnPlan],
        end_offset: int | None = None,
    ) -> Iterator[Batch]:
        """The loop runs once per row, so a good row costs the CSV module's parsing, one
        call that types and encodes it, and a few comparisons; the rest is for bad rows."""
        header, after_header = self._header()
        misfits = Misfits()
        shaper = CsvShaper(header, plans, frozenset(shaping.null_values), misfits)
        key_index = header.index(self._key_column) if self._key_column else None
        position = start if start.offset > after_header.offset else after_header
        lines = self._lines(position)
        reader = self._reader(lines)
        rows = position.rows
        batch = Batch()
        width, encode, limits = shaper.width, shaper.encode, self._limits
        first_line = lines.line + 1
        while end_offset is None or lines.offset < end_offset:
            try:
                for values in reader:
                    if len(values) > 1 or (values and values[0]):  # not a blank line
                        rows += 1
                        if lines.undecodable_at is not None or len(values) != width:
                            batch.errors.append(self._misread(first_line, lines, values, width))
                        elif key_index is not None and not values[key_index]:
                            batch.errors.append(self._keyless(first_line))
                        else:
                            key = values[key_index] if key_index is not None else str(rows)
                            try:
                                batch.add(first_line, key, encode(values, first_line))
                            except CellError as error:
                                batch.errors.append(cell_error(first_line, error))
                        if batch.is_full(limits):
                            yield _ended(batch, lines, rows, misfits)
                            batch = Batch()
                    first_line = lines.line + 1
                    lines.start_record()
                    if end_offset is not None and lines.offset >= end_offset:
                        break
                else:
                    break  # the end of the file
            except csv.Error as error:
                rows += 1
                batch.errors.append(RowError(first_line, f"malformed CSV ({error})"))
                reader = self._reader(lines)
                if batch.is_full(limits):
                    yield _ended(batch, lines, rows, misfits)
                    batch = Batch()
                first_line = lines.line + 1
                lines.start_record()
        yield _ended(batch, lines, rows, misfits)

    def _misread(self, line: int, lines: _Lines, values: list[str], width: int) -> RowError:
        """A record with undecodable bytes, or of the wrong width."""
        if lines.undecodable_at is not None:
            return RowError(line, self._invalid(lines.undecodable_at))
        return RowError(line, f"expected {width} fields, found {len(values)}")

    def _keyless(self, line: int) -> RowError:
        return RowError(line, f"the key column '{self._key_column}' is empty")


def _ended(batch: Batch, lines: _Lines, rows: int, misfits: Misfits) -> Batch:
    """The batch, ending where the lines were read to, with the misfits found in it."""
    batch.end = Position(lines.offset, lines.line, rows)
    batch.misfits, misfits.found = misfits.found, []
    return batch


_UTF8 = TextEncoding("utf-8", b"\n")
"""JSON Lines are UTF-8, whatever the CSV options say."""


def _jsonl_batches(
    stream: BinaryIO,
    start: Position,
    key_column: str | None,
    limits: ReadLimits,
    declared: dict[str, ColumnType],
    end_offset: int | None,
) -> Iterator[Batch]:
    lines = LineReader(stream, _UTF8, start.offset, limits.record_bytes)
    offset, line, rows = start.offset, start.line, start.rows
    batch = Batch()
    while (end_offset is None or offset < end_offset) and (raw := lines.read(line + 1)):
        line_offset = offset
        offset += len(raw)
        line += 1
        if not raw.strip():
            continue
        rows += 1
        _add_json_line(batch, raw, (line, line_offset), rows, (key_column, declared))
        if batch.is_full(limits):
            batch.end = Position(offset, line, rows)
            yield batch
            batch = Batch()
    batch.end = Position(offset, line, rows)
    yield batch


def _add_json_line(
    batch: Batch,
    raw: bytes,
    where: tuple[int, int],
    row_number: int,
    keying: tuple[str | None, dict[str, ColumnType]],
) -> None:
    """`where`: the line's number and the file offset it starts at; `keying`: the key
    field and the declared types."""
    line, line_offset = where
    key_column, declared = keying
    try:
        text = raw.decode("utf-8")
        document = decode_json(text)
    except UnicodeDecodeError as error:
        batch.errors.append(RowError(line, f"not valid UTF-8 at byte {line_offset + error.start}"))
        return
    except json.JSONDecodeError as error:
        batch.errors.append(RowError(line, f"not valid JSON ({error.msg})"))
        return
    except NotCoercible as error:  # Python's NaN or Infinity
        batch.errors.append(RowError(line, f"not valid JSON ({error})"))
        return
    except RecursionError:
        batch.errors.append(RowError(line, "JSON nested too deeply"))
        return
    if not isinstance(document, dict):
        batch.errors.append(RowError(line, f"a JSON {type(document).__name__}, not an object"))
        return
    if declared:
        try:
            shape_json(document, declared)
        except CellError as error:
            batch.errors.append(cell_error(line, error))
            return
    key = record_key(document.get(key_column) if key_column else None, key_column, row_number)
    if key is None:
        batch.errors.append(RowError(line, f"the key field '{key_column}' is missing or empty"))
        return
    if declared:
        try:
            encoded = encode_document(document)
        except ValueError:  # a number beyond a float's range (1e400), read as infinity
            batch.errors.append(RowError(line, "a number too large for a JSON document"))
            return
        batch.add(line, key, encoded)
    else:
        batch.add(line, key, text.strip())  # valid JSON already: kept as written
