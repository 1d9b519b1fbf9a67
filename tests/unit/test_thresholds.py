"""Thresholds and verdicts: the `warn_if`/`error_if` grammar, dbt's severity rule, the
validation's `max_invalid`, and how a warning reads in the JUnit XML report."""

from xml.etree import ElementTree

import pytest
from pydantic import ValidationError

from activities.testing import junit_xml
from pastools_jobs.datasets import testsuite
from pastools_jobs.datasets.testsuite import NotNull, Verdict
from pastools_jobs.datasets.thresholds import (
    Severity,
    TestStatus,
    judge_status,
    overall_status,
    parse_condition,
    parse_limit,
    validation_verdict,
)
from workflows.params import ValidationParams


@pytest.mark.parametrize(
    ("condition", "failing", "total", "holds"),
    [
        ("!=0", 0, 10, False),
        ("!=0", 1, 10, True),
        (">10", 10, 100, False),
        (">10", 11, 100, True),
        (" >= 10 ", 10, 100, True),
        ("<3", 2, 100, True),
        ("<=3", 4, 100, False),
        ("=0", 0, 5, True),
        ("==2", 2, 5, True),
        (">5%", 5, 100, False),
        (">5%", 6, 100, True),
        (">=2.5%", 1, 40, True),
        (">0%", 3, 0, False),  # no records read: 0 %
    ],
)
def test_a_condition_compares_the_failing_count_or_its_percentage(
    condition: str, failing: int, total: int, holds: bool
) -> None:
    assert parse_condition(condition).holds(failing, total) is holds


@pytest.mark.parametrize(
    "condition",
    [
        *["", "10", "> ten", ">-1", "=>3", ">5 %%", ">101%", "!= 0 x"],
        *[">\u0661\u0660", ">\uff11", ">5\n"],  # other scripts' digits, a line break
    ],
)
def test_a_malformed_condition_is_refused_naming_the_grammar(condition: str) -> None:
    with pytest.raises(ValueError, match="is not a threshold"):
        parse_condition(condition)


@pytest.mark.parametrize(
    ("severity", "warn_if", "error_if", "failing", "status"),
    [
        ("error", "!=0", "!=0", 0, "pass"),
        ("error", "!=0", "!=0", 1, "error"),
        ("error", "!=0", ">10", 5, "warn"),
        ("error", "!=0", ">10", 11, "error"),
        ("error", ">20", ">10", 15, "error"),
        ("warn", "!=0", "!=0", 50, "warn"),  # severity warn never errs
        ("warn", ">50%", "!=0", 50, "pass"),
        ("warn", ">50%", "!=0", 51, "warn"),
    ],
)
def test_status_follows_dbt_severity_rule(
    severity: Severity, warn_if: str, error_if: str, failing: int, status: TestStatus
) -> None:
    assert judge_status(severity, warn_if, error_if, failing, 100) == status


def test_the_overall_status_is_the_worst() -> None:
    assert overall_status([]) == "pass"
    assert overall_status(["pass", "warn", "pass"]) == "warn"
    assert overall_status(["warn", "error", "pass"]) == "error"


@pytest.mark.parametrize(
    ("max_invalid", "invalid", "total", "verdict"),
    [
        (0, 0, 10, "pass"),
        (0, 1, 10, "fail"),
        (100, 100, 1000, "pass"),
        (100, 101, 1000, "fail"),
        ("100", 101, 1000, "fail"),
        ("2%", 20, 1000, "pass"),
        ("2%", 21, 1000, "fail"),
        ("0%", 0, 0, "pass"),
    ],
)
def test_the_validation_verdict_passes_within_max_invalid(
    max_invalid: int | str, invalid: int, total: int, verdict: str
) -> None:
    assert validation_verdict(max_invalid, invalid, total) == verdict


@pytest.mark.parametrize(
    "max_invalid", [-1, "-1", "2 percent", "101%", True, "", 1.5, "\u0665", "\uff15%"]
)
def test_a_bad_max_invalid_is_refused_at_submission(max_invalid: object) -> None:
    with pytest.raises(ValidationError, match="max_invalid"):
        ValidationParams.model_validate({"max_invalid": max_invalid})


def test_percentages_are_compared_exactly_at_the_boundary() -> None:
    """1 of 3 is 33.333…%: more than 33.333333333333333 %, though the two round to one
    float; and 1 of 10 is exactly the 10 % written."""
    assert validation_verdict("33.333333333333333%", 1, 3) == "fail"
    assert judge_status("error", "!=0", ">33.333333333333333%", 1, 3) == "error"
    assert validation_verdict("10%", 1, 10) == "pass"
    assert parse_condition(">=0.1%").holds(1, 1000)
    assert not parse_condition(">0.1%").holds(1, 1000)


def test_max_invalid_defaults_to_zero_so_any_invalid_record_fails() -> None:
    assert ValidationParams().max_invalid == 0
    assert parse_limit("2%").percent


def test_a_test_with_a_bad_threshold_or_severity_is_refused_when_defined() -> None:
    good = {"kind": "not_null", "name": "n", "field": "n"}
    with pytest.raises(ValidationError, match="is not a threshold"):
        testsuite.TestSuite.model_validate({"tests": [{**good, "warn_if": "more than 10"}]})
    with pytest.raises(ValidationError, match="severity"):
        testsuite.TestSuite.model_validate({"tests": [{**good, "severity": "fatal"}]})
    test = NotNull.model_validate({**good, "kind": "not_null"})
    assert (test.severity, test.warn_if, test.error_if) == ("error", "!=0", "!=0")


def test_a_verdict_stored_before_thresholds_reads_with_its_status() -> None:
    old = {"name": "t", "kind": "unique", "passed": False, "failing": 2, "examples": []}
    assert Verdict.model_validate({**old, "message": "m"}).status == "error"
    assert Verdict.model_validate({**old, "passed": True, "message": "m"}).status == "pass"


def verdict(name: str, status: TestStatus, failing: int) -> Verdict:
    return Verdict(
        name=name,
        kind="not_null",
        passed=status == "pass",
        status=status,
        failing=failing,
        total=10,
        examples=[{"key": "k1", "value": None}] if failing else [],
        message=f"{failing} records where 'n' is missing or null",
    )


def test_junit_marks_a_warning_as_a_passed_case_with_its_output() -> None:
    verdicts = [verdict("ok", "pass", 0), verdict("meh", "warn", 2), verdict("bad", "error", 3)]

    suite = ElementTree.fromstring(junit_xml("demo", "abc", verdicts)).find("testsuite")

    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "0")
    properties = {(p.get("name"), p.get("value")) for p in suite.iter("property")}
    assert {("warnings", "1"), ("warning", "meh"), ("suite_sha256", "abc")} <= properties
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["meh"].find("failure") is None and cases["meh"].find("skipped") is None
    output = cases["meh"].findtext("system-out")
    assert output is not None and output.startswith("WARNING (warn_if !=0): 2 records")
    assert cases["bad"].find("failure") is not None
    assert cases["ok"].find("system-out") is None and cases["ok"].find("failure") is None
