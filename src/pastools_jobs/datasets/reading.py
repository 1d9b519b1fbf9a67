"""What every import reader yields, whatever the format: batches of parsed rows, each
ending at the position a retried attempt resumes from."""

from dataclasses import dataclass, field
from typing import Any

from pastools_jobs.datasets.shaping import CellError


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
    column: str | None = None
    value: str | None = None
    """The column and value at fault, when one value is."""


def cell_error(line: int, error: CellError) -> RowError:
    return RowError(
        line,
        f"column '{error.column}': {error.reason}: {error.value!r}",
        error.column,
        error.value,
    )


RECORD_LIMIT_SETTING = "PASTOOLS_IMPORT_MAX_RECORD_BYTES"
BATCH_LIMIT_SETTING = "PASTOOLS_IMPORT_BATCH_MAX_BYTES"
"""The settings (config.Settings) that set ReadLimits, as an operator sets them."""


@dataclass(frozen=True)
class ReadLimits:
    """What an import holds at once, counted in decoded bytes, not rows: one row of a
    Parquet file, or one line, can be worth a million others."""

    record_bytes: int
    """A larger record (a line, a CSV record, a Parquet row decoded) fails the import."""
    batch_bytes: int
    """A batch ends once its documents hold this much, or at `batch_rows`."""
    batch_rows: int


@dataclass
class Batch:
    rows: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, key, the document as JSON text)"""
    errors: list[RowError] = field(default_factory=list)
    end: Position = field(default_factory=Position)
    misfits: list[tuple[str, int]] = field(default_factory=list)
    """(column, line) of values kept as text: they did not fit their inferred type."""
    size: int = 0
    """Characters of the documents: what the batch holds in memory."""

    def add(self, line: int, key: str, document: str) -> None:
        self.rows.append((line, key, document))
        self.size += len(document)

    def is_full(self, limits: ReadLimits) -> bool:
        rows = len(self.rows) + len(self.errors)
        return rows >= limits.batch_rows or self.size >= limits.batch_bytes


def describe_size(size: int) -> str:
    """Whole units when exact (a limit as set: "1 MiB"), else to a tenth ("1.9 MiB")."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            whole, rest = divmod(size, 1 << shift)
            return f"{whole} {unit}" if rest == 0 else f"{size / (1 << shift):.1f} {unit}"
    return f"{size} bytes"


def record_key(value: Any, key_column: str | None, row_number: int) -> str | None:
    """The record key: the key column's value, or the row number when none is chosen."""
    if key_column is None:
        return str(row_number)
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)
