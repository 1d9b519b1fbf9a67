"""Column types of imported rows: null markers, declared types and their coercion.

A CSV value arrives as text. A value that is one of the null markers becomes JSON null;
any other value of a typed column is coerced to its type, and a value that cannot be is
a bad row naming its column and value. JSON Lines and Parquet values carry their own
types: a declared type coerces them too (a quoted "12" into an integer column becomes
12), while null markers apply to CSV text only.
"""

import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ColumnType = Literal["string", "integer", "number", "boolean", "date", "timestamp", "json"]
COLUMN_TYPES: tuple[ColumnType, ...] = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "timestamp",
    "json",
)

DEFAULT_NULL_VALUES = ("",)
"""The empty field: what a CSV writer leaves for a missing value."""

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class NotCoercible(ValueError):
    """A value its column's type does not take; the message says which type."""


_MAX_DIGITS = sys.get_int_max_str_digits() or 4300
"""The digits Python writes an integer with at most (and reads; 0 means no limit)."""


def _integer(text: str) -> int:
    """An integer, also written as a decimal ("3.0", "1e30"): read as a decimal, not a
    float, so that no digit beyond a float's 53 bits is lost."""
    if text.isdecimal() and len(text) < _MAX_DIGITS:  # most values: digits alone
        return int(text)
    stripped = text.strip()
    if "_" in stripped:  # Python's int() reads 1_000; no data file means that
        raise NotCoercible("not an integer")
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = Decimal(stripped)
    except InvalidOperation:
        raise NotCoercible("not an integer") from None
    if not number.is_finite() or number.adjusted() >= _MAX_DIGITS:
        raise NotCoercible("not an integer")  # beyond what a JSON writer writes
    if number != number.to_integral_value():
        raise NotCoercible("not an integer")
    return int(number)


def _number(text: str) -> int | float:
    stripped = text.strip()
    if "_" in stripped:
        raise NotCoercible("not a number")
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        raise NotCoercible("not a number") from None
    if not math.isfinite(number):  # JSON has no NaN or infinity
        raise NotCoercible("not a finite number")
    return number


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise NotCoercible("not a boolean")


def _date(text: str) -> str:
    try:
        parsed = date.fromisoformat(text.strip())
    except ValueError:
        raise NotCoercible("not a date (YYYY-MM-DD)") from None
    return text if len(text) == 10 and text[4] == "-" else parsed.isoformat()


def _timestamp(text: str) -> str:
    stripped = text.strip()
    try:
        parsed = datetime.fromisoformat(stripped.replace(" ", "T", 1))
    except ValueError:
        raise NotCoercible("not a timestamp (ISO 8601)") from None
    if len(stripped) <= 10:  # a bare date is a date, not a timestamp
        raise NotCoercible("not a timestamp (ISO 8601)")
    return parsed.isoformat()


def _refuse_constant(name: str) -> Any:
    raise NotCoercible(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NotCoercible("a number too large for a JSON document")
    return number


decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode
"""json.loads without Python's NaN and Infinity, which JSON has not: PostgreSQL's jsonb
refuses a document holding one, and SQLite would keep what no JSON reader takes."""

_decode_json_value = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float
).decode


def _json(text: str) -> Any:
    try:
        return _decode_json_value(text)
    except NotCoercible:
        raise
    except (ValueError, RecursionError):
        raise NotCoercible("not valid JSON") from None


_FROM_TEXT: dict[ColumnType, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
    "json": _json,
}


def from_text(text: str, column_type: ColumnType) -> Any:
    """A CSV field as its column's type; raises NotCoercible."""
    return _FROM_TEXT[column_type](text)


def text_parser(column_type: ColumnType) -> Callable[[str], Any]:
    """`from_text` for one type, looked up once: it runs once per value of a column."""
    return _FROM_TEXT[column_type]


def from_json(value: Any, column_type: ColumnType) -> Any:
    """A JSON value as its column's type: null stays null, text is parsed as CSV text
    is, a number or boolean is converted where no information is lost."""
    if value is None or column_type == "json":
        return value
    if not isinstance(value, str | int | float | bool | list | dict):
        value = str(value)  # a Parquet date, timestamp or decimal: its text
    if column_type == "string":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        return from_text(value, column_type)
    if isinstance(value, bool):
        if column_type == "boolean":
            return value
        raise NotCoercible(f"not {'an' if column_type == 'integer' else 'a'} {column_type}")
    if isinstance(value, int | float) and column_type in ("integer", "number"):
        return from_text(repr(value), column_type)
    raise NotCoercible(f"a JSON {type(value).__name__} is not a {column_type}")


_INFERENCE_ORDER: tuple[ColumnType, ...] = ("boolean", "integer", "number", "timestamp", "date")
"""Narrowest first; a column none of them takes is a string. Booleans are only the words
(true/false): a column of 0 and 1 is integers."""


_LEADING_ZERO = re.compile(r"^\s*[-+]?0\d")
_INTEGER_LITERAL = re.compile(r"^\s*[-+]?\d+\s*$")


def _fits(text: str, column_type: ColumnType) -> bool:
    if column_type == "boolean":
        return text.strip().lower() in ("true", "false")
    if column_type in ("integer", "number") and _LEADING_ZERO.match(text):
        return False  # a code (a ZIP code, "007"), whose zeros a number would lose
    if column_type == "integer" and not _INTEGER_LITERAL.match(text):
        return False  # "1.0" or "1e3" is written as a number: inferred, it stays one
    try:
        from_text(text, column_type)
    except NotCoercible:
        return False
    return True


def infer_type(values: Sequence[str], null_values: frozenset[str]) -> ColumnType:
    """The narrowest type every non-null sampled value fits (as DuckDB's sniffer does);
    a column of nulls only is a string."""
    present = [value for value in values if value not in null_values]
    if not present:
        return "string"
    candidates = list(_INFERENCE_ORDER)
    for value in present:
        candidates = [kind for kind in candidates if _fits(value, kind)]
        if not candidates:
            return "string"
    return candidates[0]
