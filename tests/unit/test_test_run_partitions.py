"""How a split test run is cut (`workflows/test_run_job.partition_works`): the tests that
judge one record at a time go to every key range, the whole-dataset ones to one partition
more over all records, first; a suite of only one kind makes only its partitions, and the
progress of all of them adds up to one bar."""

from collections.abc import Mapping

from activities.testing import SuiteSnapshot
from activities.testing import TestRunWork as RunWork
from pastools_jobs.datasets.testsuite import TestSuite as Suite
from pastools_jobs.partitions import KeyRange, PartitionPlan, key_partitions
from workflows.test_run_job import partition_works

RECORDS = 300
PLAN = PartitionPlan(partitions=key_partitions(["k100", "k200"], RECORDS), window=2)


def work_of(*tests: Mapping[str, object]) -> RunWork:
    suite = Suite.model_validate({"tests": list(tests)})
    return RunWork(project_id="p", snapshot=SuiteSnapshot(suite=suite, sha256="0" * 64))


NOT_NULL = {"kind": "not_null", "name": "a", "field": "a"}
UNIQUE = {"kind": "unique", "name": "b", "field": "b"}
RANGE = {"kind": "range", "name": "c", "field": "c", "min": 0}
ROW_COUNT = {"kind": "row_count", "name": "d", "min": 1}
RELATIONSHIP = {"kind": "relationship", "name": "e", "field": "e", "to_project": "q"}


def test_record_tests_go_to_every_range_and_whole_dataset_tests_to_one_more() -> None:
    works = partition_works(work_of(NOT_NULL, UNIQUE, RANGE, ROW_COUNT, RELATIONSHIP), PLAN)

    assert [work.tests for work in works] == [["b", "d"]] + [["a", "c", "e"]] * 3
    parts = [work.partition for work in works]
    assert [(p.index, p.count) for p in parts if p] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert [p.keys for p in parts if p] == [
        KeyRange(),
        KeyRange(until_key="k100"),
        KeyRange(after_key="k100", until_key="k200"),
        KeyRange(after_key="k200"),
    ]
    assert {p.job_total for p in parts if p} == {RECORDS * 5}, "each record once per test"


def test_a_suite_of_one_kind_makes_only_its_partitions() -> None:
    whole = partition_works(work_of(UNIQUE, ROW_COUNT), PLAN)
    by_record = partition_works(work_of(NOT_NULL, RANGE), PLAN)

    assert [(w.tests, w.partition and w.partition.keys) for w in whole] == [
        (["b", "d"], KeyRange())
    ]
    assert [w.tests for w in by_record] == [["a", "c"]] * 3
    assert [(w.partition.index, w.partition.count) for w in by_record if w.partition] == [
        (0, 3),
        (1, 3),
        (2, 3),
    ]
