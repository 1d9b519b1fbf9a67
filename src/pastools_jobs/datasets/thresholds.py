"""Thresholds that turn failing counts into verdicts, as dbt's `warn_if`/`error_if` and
Great Expectations' `mostly` do: a few failing records may be acceptable.

A condition (`warn_if`, `error_if`) is a comparison of the failing count with a number,
or with a percentage of the records the test read: `">10"`, `"!=0"`, `">=5%"`. A limit
(`max_invalid`) is the most a verdict still passes with: a count (`100`) or a percentage
(`"2%"`). Both are parsed when given, so a bad one is a 422 at definition or submission.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Severity = Literal["warn", "error"]
TestStatus = Literal["pass", "warn", "error"]
ValidationVerdict = Literal["pass", "fail"]

# ASCII digits and spaces only: `\d` and `\s` would also take other scripts' digits and
# line breaks, which `Fraction` then reads as numbers.
_CONDITION = re.compile(r"[ \t]*(>=|<=|!=|==|=|>|<)[ \t]*([0-9]+(?:\.[0-9]+)?)[ \t]*(%?)[ \t]*")
_LIMIT = re.compile(r"[ \t]*([0-9]+(?:\.[0-9]+)?)[ \t]*(%?)[ \t]*")
_OPERATORS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
CONDITION_GRAMMAR = (
    "a comparison of the failing count with a number of records or a percentage: "
    "one of > >= < <= = == != then a number, optionally followed by % "
    '(e.g. ">10", "!=0", ">=5%")'
)
LIMIT_GRAMMAR = 'a count of records (100) or a percentage of them ("2%"), at least 0'


@dataclass(frozen=True)
class Amount:
    """A number of records, or a percentage of the records read: exact, as written, so a
    count on the boundary compares as it reads (floats would make 1 of 3 equal to
    33.333333333333333 %)."""

    value: Fraction
    percent: bool


def _failing_measure(amount: Amount, failing: int, total: int) -> Fraction:
    """The failing count in the amount's unit, exactly; no records read count as 0 %."""
    if not amount.percent:
        return Fraction(failing)
    return Fraction(failing * 100, total) if total else Fraction(0)


@dataclass(frozen=True)
class Condition:
    """`warn_if` / `error_if`: true when the failing count compares as written."""

    comparison: str
    amount: Amount

    def holds(self, failing: int, total: int) -> bool:
        measured = _failing_measure(self.amount, failing, total)
        return _OPERATORS[self.comparison](measured, self.amount.value)


def parse_condition(text: str) -> Condition:
    """Raises ValueError naming the grammar: pydantic turns it into a 422."""
    match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a threshold: expected {CONDITION_GRAMMAR}")
    comparison, number, percent = match.groups()
    amount = Amount(Fraction(number), percent == "%")
    if amount.percent and amount.value > 100:
        raise ValueError(f"{text!r} is not a threshold: a percentage is at most 100%")
    return Condition(comparison, amount)


def parse_limit(limit: str | int) -> Amount:
    """`max_invalid`: an integer count, or a string count or percentage."""
    if isinstance(limit, bool):
        raise ValueError(f"{limit!r} is not a limit: expected {LIMIT_GRAMMAR}")
    if isinstance(limit, int):
        if limit < 0:
            raise ValueError(f"{limit!r} is not a limit: expected {LIMIT_GRAMMAR}")
        return Amount(Fraction(limit), False)
    match = _LIMIT.fullmatch(limit)
    if match is None:
        raise ValueError(f"{limit!r} is not a limit: expected {LIMIT_GRAMMAR}")
    amount = Amount(Fraction(match.group(1)), match.group(2) == "%")
    if amount.percent and amount.value > 100:
        raise ValueError(f"{limit!r} is not a limit: a percentage is at most 100%")
    return amount


def judge_status(
    severity: Severity, warn_if: str, error_if: str, failing: int, total: int
) -> TestStatus:
    """dbt's rule: an `error`-severity test errs when `error_if` holds, else warns when
    `warn_if` holds; a `warn`-severity test only ever warns."""
    if severity == "error" and parse_condition(error_if).holds(failing, total):
        return "error"
    if parse_condition(warn_if).holds(failing, total):
        return "warn"
    return "pass"


def overall_status(statuses: list[TestStatus]) -> TestStatus:
    """The worst of the tests' statuses; `pass` for none."""
    if "error" in statuses:
        return "error"
    return "warn" if "warn" in statuses else "pass"


def validation_verdict(max_invalid: str | int, invalid: int, total: int) -> ValidationVerdict:
    """`pass` when `invalid` of `total` records is at most `max_invalid` (a percentage of
    `total` when it ends in %): the one rule, wherever the counts are added up."""
    amount = parse_limit(max_invalid)
    return "pass" if _failing_measure(amount, invalid, total) <= amount.value else "fail"
