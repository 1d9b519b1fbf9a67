"""Declarative data tests of a project's records, and how each one is evaluated.

Each test reads the records once, in batches (memory stays flat), and ends with a
verdict: passed or failed, the failing count and a few examples. `regex` uses a
linear-time engine, so a hostile pattern cannot stall a worker.
"""

import functools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

MAX_EXAMPLES = 5
_MISSING = object()


def field_value(document: Any, path: str) -> Any:
    """The value at a dotted path (`address.city`), or `_MISSING`."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


class Verdict(BaseModel):
    name: str
    kind: str
    passed: bool
    failing: int
    examples: list[dict[str, Any]]
    message: str


class DataTest(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    needs_other_project: ClassVar[bool] = False

    @abstractmethod
    def evaluate(self, batches: Iterable[list[tuple[str, Any]]], context: Any) -> Verdict: ...

    def verdict(self, failing: int, examples: list[dict[str, Any]], message: str) -> Verdict:
        return Verdict(
            name=self.name,
            kind=self.kind,  # type: ignore[attr-defined]
            passed=failing == 0,
            failing=failing,
            examples=examples[:MAX_EXAMPLES],
            message=message,
        )


class RowTest(DataTest, ABC):
    """A test that judges each record on its own."""

    field: str = Field(min_length=1, max_length=500)

    @abstractmethod
    def fails(self, value: Any) -> bool: ...

    @abstractmethod
    def describe(self) -> str: ...

    def evaluate(self, batches: Iterable[list[tuple[str, Any]]], context: Any) -> Verdict:
        failing, examples = 0, list[dict[str, Any]]()
        for batch in batches:
            for key, document in batch:
                value = field_value(document, self.field)
                if self.fails(value):
                    failing += 1
                    if len(examples) < MAX_EXAMPLES:
                        shown = None if value is _MISSING else value
                        examples.append({"key": key, "value": shown})
        return self.verdict(failing, examples, f"{failing} records where {self.describe()}")


class NotNull(RowTest):
    kind: Literal["not_null"]

    def fails(self, value: Any) -> bool:
        return value is _MISSING or value is None

    def describe(self) -> str:
        return f"'{self.field}' is missing or null"


class AcceptedValues(RowTest):
    kind: Literal["accepted_values"]
    values: list[Any] = Field(min_length=1, max_length=10_000)

    def fails(self, value: Any) -> bool:
        return value is not _MISSING and value is not None and value not in self.values

    def describe(self) -> str:
        return f"'{self.field}' is not one of the accepted values"


class Regex(RowTest):
    kind: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        _matcher(pattern)
        return pattern

    def fails(self, value: Any) -> bool:
        if value is _MISSING or value is None:
            return False
        return not isinstance(value, str) or not _matcher(self.pattern).is_valid(value)

    def describe(self) -> str:
        return f"'{self.field}' does not match {self.pattern}"


class Range(RowTest):
    kind: Literal["range"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "Range":
        if self.min is None and self.max is None:
            raise ValueError("a range test needs min, max or both")
        return self

    def fails(self, value: Any) -> bool:
        if value is _MISSING or value is None:
            return False
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return True
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        )

    def describe(self) -> str:
        return f"'{self.field}' is not a number within [{self.min}, {self.max}]"


class Unique(DataTest):
    kind: Literal["unique"]
    field: str = Field(min_length=1, max_length=500)

    def evaluate(self, batches: Iterable[list[tuple[str, Any]]], context: Any) -> Verdict:
        first_key: dict[str, str] = {}
        failing, examples = 0, list[dict[str, Any]]()
        for batch in batches:
            for key, document in batch:
                value = field_value(document, self.field)
                if value is _MISSING or value is None:
                    continue
                marker = json.dumps(value, sort_keys=True)
                if marker in first_key:
                    failing += 1
                    if len(examples) < MAX_EXAMPLES:
                        examples.append({"key": key, "value": value, "same_as": first_key[marker]})
                else:
                    first_key[marker] = key
        return self.verdict(failing, examples, f"{failing} records repeat a '{self.field}'")


class RowCount(DataTest):
    kind: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    def evaluate(self, batches: Iterable[list[tuple[str, Any]]], context: Any) -> Verdict:
        count = sum(len(batch) for batch in batches)
        low = self.min is not None and count < self.min
        high = self.max is not None and count > self.max
        failing = 1 if low or high else 0
        bounds = f"[{self.min}, {self.max}]"
        return self.verdict(failing, [], f"{count} records; expected within {bounds}")


class Relationship(DataTest):
    kind: Literal["relationship"]
    field: str = Field(min_length=1, max_length=500)
    to_project: str = Field(min_length=1, max_length=200)
    needs_other_project: ClassVar[bool] = True

    def evaluate(self, batches: Iterable[list[tuple[str, Any]]], context: Any) -> Verdict:
        """`context(keys)` answers which keys exist in `to_project`."""
        failing, examples = 0, list[dict[str, Any]]()
        for batch in batches:
            wanted = {
                key: str(value)
                for key, document in batch
                if (value := field_value(document, self.field)) is not _MISSING
                and value is not None
            }
            present = context(sorted(set(wanted.values())))
            for key, value in wanted.items():
                if value not in present:
                    failing += 1
                    if len(examples) < MAX_EXAMPLES:
                        examples.append({"key": key, "value": value})
        return self.verdict(
            failing, examples, f"{failing} records point to no key of '{self.to_project}'"
        )


AnyTest = Annotated[
    NotNull | Unique | AcceptedValues | RowCount | Regex | Range | Relationship,
    Field(discriminator="kind"),
]


class TestSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tests: list[AnyTest] = Field(max_length=500)

    @model_validator(mode="after")
    def _unique_names(self) -> "TestSuite":
        names = [test.name for test in self.tests]
        if len(names) != len(set(names)):
            raise ValueError("test names must be unique")
        return self

    def other_projects(self) -> set[str]:
        """The projects whose keys the suite's relationship tests read."""
        return {test.to_project for test in self.tests if isinstance(test, Relationship)}


SUITE = TypeAdapter(TestSuite)


@functools.lru_cache(maxsize=256)
def _matcher(pattern: str) -> jsonschema_rs.Draft202012Validator:
    try:
        return jsonschema_rs.Draft202012Validator(
            {"type": "string", "pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions()
        )
    except (jsonschema_rs.ValidationError, ValueError) as error:
        raise ValueError(f"invalid regular expression: {str(error).splitlines()[0]}") from None
