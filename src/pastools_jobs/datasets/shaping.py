"""Turning a row's values into its record's document, by the column types decided for
the import (declared, or inferred from a sample of the file).

A declared type is a promise the user made: a value that breaks it is a bad row. An
inferred type is a guess from the first rows: a later value that does not fit it is kept
as its text and counted as a misfit, never a bad row and never a failed job. DuckDB
fails the load there instead; we do not, because the batches before it are committed
already and the value is not wrong, only our guess was. The result reports each
column's type, how it was decided and its misfits, so the user can declare the type.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Literal

from pastools_jobs.datasets.coercion import (
    ColumnType,
    NotCoercible,
    from_json,
    infer_type,
    text_parser,
)

Decided = Literal["declared", "inferred", "unset"]


@dataclass(frozen=True)
class ColumnPlan:
    """A column's type and how it was decided; `unset`: no type, values kept as text."""

    type: ColumnType
    decided: Decided


@dataclass
class CellError(Exception):
    """A value its declared type refuses."""

    column: str
    value: str
    reason: str


@dataclass
class Misfits:
    """Values kept as text because they did not fit their inferred type: (column, line)."""

    found: list[tuple[str, int]] = field(default_factory=list)


def plan_columns(
    header: list[str],
    declared: Mapping[str, ColumnType],
    infer: bool,
    sample: Iterable[list[str]],
    null_values: frozenset[str],
) -> dict[str, ColumnPlan]:
    """Declared types first; the other columns inferred from `sample` (rows of the
    header's width), or left as text when inference is off."""
    undeclared = [name for name in header if name not in declared]
    inferred: dict[str, ColumnType] = {}
    if infer and undeclared:
        columns: dict[str, list[str]] = {name: [] for name in undeclared}
        indexes = [(name, header.index(name)) for name in undeclared]
        for row in sample:
            if len(row) == len(header):
                for name, index in indexes:
                    columns[name].append(row[index])
        inferred = {name: infer_type(values, null_values) for name, values in columns.items()}
    plans: dict[str, ColumnPlan] = {}
    for name in header:
        if name in declared:
            plans[name] = ColumnPlan(declared[name], "declared")
        elif name in inferred:
            plans[name] = ColumnPlan(inferred[name], "inferred")
        else:
            plans[name] = ColumnPlan("string", "unset")
    return plans


Fallback = Callable[[str, int], Any]
"""What a value its column's parser refused becomes (given its line): raises CellError
for a declared type, keeps the text for an inferred one."""


def _declared(name: str, column_type: ColumnType) -> Fallback:
    parse = text_parser(column_type)

    def refuse(text: str, _line: int) -> Any:
        try:
            return parse(text)
        except NotCoercible as error:
            raise CellError(name, text, str(error)) from None

    return refuse


def _inferred(name: str, column_type: ColumnType, misfits: Misfits) -> Fallback:
    """An integer column widens to a number (2.5 after a sample of whole numbers) without
    a misfit: JSON has one number type."""
    wider = [text_parser("number")] if column_type == "integer" else []

    def keep(text: str, line: int) -> Any:
        for widened in wider:
            try:
                return widened(text)
            except NotCoercible:
                pass
        misfits.found.append((name, line))
        return text

    return keep


def _document_encoder() -> Callable[[Any], str]:
    """Compact JSON text, UTF-8 kept as is, NaN and infinity refused (ValueError: JSON
    has neither). The C encoder is made once, not once per row as json.dumps and
    JSONEncoder.encode make it (a third of their time on a short document); without the
    cycle check, which no document parsed from a file needs (it cannot hold a cycle)."""
    python = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
    if make_encoder is None:  # an interpreter without the json module's C speedups
        return python.encode
    encoder = make_encoder(
        None, python.default, encode_basestring, None, ":", ",", False, False, False
    )
    return lambda document: "".join(encoder(document, 0))


encode_document = _document_encoder()
"""A record's document as the JSON text stored: the same text JSONEncoder.encode gives."""


class CsvShaper:
    """A CSV row's values to its document's JSON text: null markers to null, values to
    their types. Per row, text columns cost nothing and the null check is one set
    operation; a typed value is one parser call, the slower fallback only for a value
    it refuses."""

    def __init__(
        self,
        header: list[str],
        plans: Mapping[str, ColumnPlan],
        null_values: frozenset[str],
        misfits: Misfits,
    ) -> None:
        self._header = header
        self.width = len(header)
        self._nulls = null_values
        self._typed = [
            (index, text_parser(plans[name].type), self._fallback(name, plans[name], misfits))
            for index, name in enumerate(header)
            if plans[name].type != "string"
        ]

    @staticmethod
    def _fallback(name: str, plan: ColumnPlan, misfits: Misfits) -> Fallback:
        if plan.decided == "declared":
            return _declared(name, plan.type)
        return _inferred(name, plan.type, misfits)

    def encode(self, row: list[str], line: int) -> str:
        """The document of a row of the header's width; raises CellError for the first
        value its declared type refuses."""
        values: list[Any] = row  # typed in place: the reader gives each row its own list
        nulls = self._nulls
        if nulls and not nulls.isdisjoint(values):
            values = [None if value in nulls else value for value in values]
        for index, parse, fallback in self._typed:
            value = values[index]
            if value is not None:
                try:
                    values[index] = parse(value)
                except NotCoercible:
                    values[index] = fallback(value, line)
        return encode_document(dict(zip(self._header, values, strict=True)))


def shape_json(document: dict[str, Any], declared: Mapping[str, ColumnType]) -> dict[str, Any]:
    """A JSON document's declared fields coerced in place (a missing field stays
    missing); raises CellError."""
    for name, column_type in declared.items():
        if name in document:
            try:
                document[name] = from_json(document[name], column_type)
            except NotCoercible as error:
                raise CellError(name, _shown(document[name]), str(error)) from None
    return document


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
