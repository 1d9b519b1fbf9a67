"""What every import reader yields, whatever the format: batches of parsed rows, each
ending at the position a retried attempt resumes from."""

from dataclasses import dataclass, field
from typing import Any


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


def describe_size(limit: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


def record_key(value: Any, key_column: str | None, row_number: int) -> str | None:
    """The record key: the key column's value, or the row number when none is chosen."""
    if key_column is None:
        return str(row_number)
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)
