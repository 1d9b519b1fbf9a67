"""Declarative data tests of a project's records, and how each one is evaluated.

Each test reads the records once, in batches (memory stays flat), and ends with a
verdict: its failing count out of the records it read, judged against the test's
`severity`, `warn_if` and `error_if` (`thresholds.py`) as `pass`, `warn` or `error`,
with a few examples. The first failing records are handed to a `Failures`, which
keeps them for the examples and the failing-rows artifact. `regex` uses a linear-time engine, so a
hostile pattern cannot stall a worker.

A test that judges each record alone (`whole_dataset` false) can be judged per key range
and its verdicts merged (`merge_verdicts`) into the one verdict of the whole; `unique` and
`row_count` judge the whole dataset, and are judged so when a run is split
(`Unique.judge`, `RowCount.judge`), with the database doing the heavy part.
"""

import functools
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from pastools_jobs.datasets.thresholds import (
    CONDITION_GRAMMAR,
    Severity,
    TestStatus,
    judge_status,
    parse_condition,
)

MAX_EXAMPLES = 5
TEST_NAME_PATTERN = r"^[^\x00]+$"
"""Anything but NUL, which PostgreSQL's text cannot hold: the history is keyed by name."""
_MISSING = object()


def field_value(document: Any, path: str) -> Any:
    """The value at a dotted path (`address.city`), or `_MISSING`."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


class Failures:
    """Where a test puts its first `wanted` failing records: the first few become the
    verdict's examples, the first `keep` go to `sink` (the failing-rows artifact). The
    test counts the rest without building them, so memory and time stay those of a count."""

    def __init__(self, sink: Callable[[dict[str, Any]], None], keep: int) -> None:
        self.examples: list[dict[str, Any]] = []
        self._sink = sink
        self._keep = keep
        self.wanted = max(MAX_EXAMPLES, keep)

    def keep(self, failing: int, key: str, value: Any, **more: Any) -> None:
        """The `failing`-th failing record: its key and failing value(s)."""
        row = {"key": key, "value": value, **more}
        if failing <= MAX_EXAMPLES:
            self.examples.append(row)
        if failing <= self._keep:
            self._sink(row)


class Verdict(BaseModel):
    name: str
    kind: str
    passed: bool = Field(description="True only when `status` is `pass`.")
    status: TestStatus = Field(
        description="`pass`, `warn` or `error`, from the failing count and the thresholds."
    )
    failing: int
    total: int | None = Field(
        default=None,
        description="Records the test read (1 for `row_count`, which judges the whole "
        "dataset); None in results from before thresholds existed.",
    )
    severity: Severity = "error"
    warn_if: str = "!=0"
    error_if: str = "!=0"
    examples: list[dict[str, Any]]
    message: str

    @model_validator(mode="before")
    @classmethod
    def _status_of_older_results(cls, data: Any) -> Any:
        """Results and checkpoints from before thresholds had only `passed`."""
        if isinstance(data, dict) and "status" not in data and "passed" in data:
            return {**data, "status": "pass" if data["passed"] else "error"}
        return data


class DataTest(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=TEST_NAME_PATTERN)
    severity: Severity = Field(
        default="error", description="`warn`: failures only ever warn, as in dbt."
    )
    warn_if: str = Field(
        default="!=0", max_length=50, description=f"Warn when true: {CONDITION_GRAMMAR}."
    )
    error_if: str = Field(
        default="!=0",
        max_length=50,
        description=f"Err when true (severity `error` only): {CONDITION_GRAMMAR}.",
    )
    needs_other_project: ClassVar[bool] = False
    whole_dataset: ClassVar[bool] = False
    """Whether the verdict depends on records beyond the one judged: such a test cannot be
    judged per key range."""

    @field_validator("warn_if", "error_if")
    @classmethod
    def _parses(cls, condition: str) -> str:
        parse_condition(condition)
        return condition

    @abstractmethod
    def evaluate(
        self, batches: Iterable[list[tuple[str, Any]]], context: Any, failures: Failures
    ) -> Verdict: ...

    def verdict(
        self, failing: int, total: int, examples: list[dict[str, Any]], message: str
    ) -> Verdict:
        status = judge_status(self.severity, self.warn_if, self.error_if, failing, total)
        return Verdict(
            name=self.name,
            kind=self.kind,  # type: ignore[attr-defined]
            passed=status == "pass",
            status=status,
            failing=failing,
            total=total,
            severity=self.severity,
            warn_if=self.warn_if,
            error_if=self.error_if,
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

    def evaluate(
        self, batches: Iterable[list[tuple[str, Any]]], context: Any, failures: Failures
    ) -> Verdict:
        total = failing = 0
        for batch in batches:
            total += len(batch)
            for key, document in batch:
                value = field_value(document, self.field)
                if self.fails(value):
                    failing += 1
                    if failing <= failures.wanted:
                        failures.keep(failing, key, None if value is _MISSING else value)
        return self.verdict(failing, total, failures.examples, self.summary(failing))

    def summary(self, failing: int) -> str:
        return f"{failing} records where {self.describe()}"


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
    whole_dataset: ClassVar[bool] = True

    def evaluate(
        self, batches: Iterable[list[tuple[str, Any]]], context: Any, failures: Failures
    ) -> Verdict:
        return self.judge(batches, failures)

    def judge(
        self,
        batches: Iterable[list[tuple[str, Any]]],
        failures: Failures,
        total: int | None = None,
    ) -> Verdict:
        """The verdict over `total` records (None: those read), of which `batches`, in key
        order, hold at least every one whose value another holds too: the others cannot
        fail and need not be read (`datasets/duplicates.py` has the database find them)."""
        first_key: dict[str, str] = {}
        read = failing = 0
        for batch in batches:
            read += len(batch)
            for key, document in batch:
                value = field_value(document, self.field)
                if value is _MISSING or value is None:
                    continue
                marker = json.dumps(value, sort_keys=True)
                if marker in first_key:
                    failing += 1
                    if failing <= failures.wanted:
                        failures.keep(failing, key, value, same_as=first_key[marker])
                else:
                    first_key[marker] = key
        message = f"{failing} records repeat a '{self.field}'"
        return self.verdict(failing, read if total is None else total, failures.examples, message)


class RowCount(DataTest):
    kind: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    whole_dataset: ClassVar[bool] = True

    def evaluate(
        self, batches: Iterable[list[tuple[str, Any]]], context: Any, failures: Failures
    ) -> Verdict:
        return self.judge(sum(len(batch) for batch in batches))

    def judge(self, count: int) -> Verdict:
        """One check of the whole dataset: 0 or 1 failing out of 1, and no failing rows."""
        low = self.min is not None and count < self.min
        high = self.max is not None and count > self.max
        bounds = f"[{self.min}, {self.max}]"
        failing = 1 if low or high else 0
        return self.verdict(failing, 1, [], f"{count} records; expected within {bounds}")


class Relationship(DataTest):
    kind: Literal["relationship"]
    field: str = Field(min_length=1, max_length=500)
    to_project: str = Field(min_length=1, max_length=200)
    needs_other_project: ClassVar[bool] = True

    def evaluate(
        self, batches: Iterable[list[tuple[str, Any]]], context: Any, failures: Failures
    ) -> Verdict:
        """`context(keys)` answers which keys exist in `to_project`."""
        total = failing = 0
        for batch in batches:
            total += len(batch)
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
                    if failing <= failures.wanted:
                        failures.keep(failing, key, value)
        return self.verdict(failing, total, failures.examples, self.summary(failing))

    def summary(self, failing: int) -> str:
        return f"{failing} records point to no key of '{self.to_project}'"


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


def merge_verdicts(test: RowTest | Relationship, parts: list[Verdict]) -> Verdict:
    """The verdicts of one record-by-record test over key ranges, in key order, as one
    judgement of all their records: counts summed, the first examples in key order, the
    status judged again from the sums (a percentage threshold needs the whole total)."""
    failing = sum(part.failing for part in parts)
    total = sum(part.total or 0 for part in parts)
    examples = [example for part in parts for example in part.examples]
    return test.verdict(failing, total, examples, test.summary(failing))


@functools.lru_cache(maxsize=256)
def _matcher(pattern: str) -> jsonschema_rs.Draft202012Validator:
    try:
        return jsonschema_rs.Draft202012Validator(
            {"type": "string", "pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions()
        )
    except (jsonschema_rs.ValidationError, ValueError) as error:
        raise ValueError(f"invalid regular expression: {str(error).splitlines()[0]}") from None
