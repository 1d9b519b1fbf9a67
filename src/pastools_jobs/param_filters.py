"""Finding jobs by what they were asked to do: `param.<name>=<value>` in a list's query.

A query string cannot say whether `3` is a number or a string, so a value matches the
parameter's JSON value as either: `param.items=3` finds 3 and "3", `param.dry_run=true`
true and "true", `param.format=parquet` the string "parquet". A value that ends in `*`
finds the strings that begin with the rest (`param.source=uploads/*`). Values given twice
for one name are alternatives, as repeated `status` values are; different names must all
match.

On PostgreSQL an equality is JSONB containment (`params @> '{"format": "parquet"}'`), which
the GIN index on `params` serves; on SQLite both kinds read `json_type` and `json_extract`.
"""

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import QueryableAttribute

from pastools_jobs.db.models import Job
from pastools_jobs.domain import InvalidJobInput

QUERY_PREFIX = "param."
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_NAMES = 10
MAX_VALUES = 20
MAX_VALUE_LENGTH = 1000
PREFIX_MARK = "*"


@dataclass(frozen=True)
class ParamFilter:
    """One parameter's filter: the job matches if the parameter is any of `values`."""

    name: str
    values: tuple[str, ...]


def parse_param_filters(query: Iterable[tuple[str, str]]) -> tuple[ParamFilter, ...]:
    """The `param.<name>` items of a query string, in their order; InvalidJobInput names
    the first one a filter cannot be made of."""
    values: dict[str, list[str]] = {}
    for key, value in query:
        if not key.startswith(QUERY_PREFIX):
            continue
        name = key.removeprefix(QUERY_PREFIX)
        if not NAME.match(name):
            raise InvalidJobInput(
                f"'{key[:80]}' is not a parameter filter: a parameter's name is a letter or "
                "underscore, then up to 63 letters, digits or underscores."
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidJobInput(f"'{key}' is longer than {MAX_VALUE_LENGTH} characters.")
        values.setdefault(name, []).append(value)
        if len(values[name]) > MAX_VALUES:
            raise InvalidJobInput(f"'{key}' is given more than {MAX_VALUES} times.")
    if len(values) > MAX_NAMES:
        raise InvalidJobInput(f"At most {MAX_NAMES} parameters can be filtered on at once.")
    return tuple(ParamFilter(name, tuple(given)) for name, given in values.items())


def param_conditions(
    filters: Sequence[ParamFilter], dialect: str, params: QueryableAttribute[Any] = Job.params
) -> list[ColumnElement[bool]]:
    """One condition on the `params` column (the jobs table's, or a subquery's) per
    filter, in `dialect`'s own JSON functions."""
    match = _postgresql_match if dialect == "postgresql" else _sqlite_match
    return [or_(*(match(params, f.name, value) for value in f.values)) for f in filters]


def is_prefix(value: str) -> bool:
    return value.endswith(PREFIX_MARK)


def _candidates(value: str) -> list[Any]:
    """The JSON values a query's `value` may mean: itself as a string, and the number,
    boolean or null it spells, if it spells one."""
    candidates: list[Any] = [value]
    try:
        spelled = json.loads(value)
    except ValueError:
        return candidates
    if (
        spelled is None
        or isinstance(spelled, bool | int)
        or (isinstance(spelled, float) and math.isfinite(spelled))
    ):
        candidates.append(spelled)
    return candidates


def _postgresql_match(
    column: QueryableAttribute[Any], name: str, value: str
) -> ColumnElement[bool]:
    params = type_coerce(column, JSONB)
    if is_prefix(value):
        prefix = value.removesuffix(PREFIX_MARK)
        return and_(
            func.jsonb_typeof(params[name]) == "string",
            params[name].astext.startswith(prefix, autoescape=True),
        )
    return or_(*(params.contains({name: candidate}) for candidate in _candidates(value)))


def _sqlite_match(params: QueryableAttribute[Any], name: str, value: str) -> ColumnElement[bool]:
    path = f'$."{name}"'
    kind = func.json_type(params, path)
    extracted = func.json_extract(params, path)
    if is_prefix(value):
        prefix = value.removesuffix(PREFIX_MARK)
        # substr, not LIKE: SQLite's LIKE ignores the case of ASCII letters.
        return and_(kind == "text", func.substr(extracted, 1, len(prefix)) == prefix)
    return or_(*(_sqlite_equals(kind, extracted, candidate) for candidate in _candidates(value)))


def _sqlite_equals(
    kind: ColumnElement[Any], extracted: ColumnElement[Any], candidate: Any
) -> ColumnElement[bool]:
    if candidate is None:
        return kind == "null"
    if isinstance(candidate, bool):
        return kind == ("true" if candidate else "false")
    if isinstance(candidate, str):
        return and_(kind == "text", extracted == candidate)
    return and_(kind.in_(["integer", "real"]), extracted == candidate)
