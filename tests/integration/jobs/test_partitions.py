"""Big jobs split into partitions, on either database: the same work done by the session's
stack (one activity) and by a stack whose partitions are a few dozen records (a
validation, an export) or a few KiB (an import) gives the same result and the same
artifact, one file; a bad row in a partitioned import fails it with nothing written.
Imports are split by their data: a CSV file by its bytes, a Parquet file by its row
groups'. The partitions benchmark runs on the SQLite stack at a tiny size."""

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from bench.datasets import generate_csv
from bench.partitions import JOBS, Bench, measure_jobs, table
from tests.conftest import database_url, storage_env
from tests.integration.jobs.test_export_validation_tests import (
    download,
    finished,
    import_rows,
    project_with,
)
from tests.support.jobs import JobsApi
from tests.support.services import Stack, TemporalServer, start_stack

pytestmark = pytest.mark.integration

RECORDS = 230
PARTITION_ROWS = 40
"""Six partitions, two at a time."""
PARTITION_BYTES = 2000
"""An import of a few KiB in a few partitions (the validation's source too: it stays
correct)."""

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
}


@pytest.fixture(scope="module")
def partitioned(
    stack: Stack,
    request: pytest.FixtureRequest,
    temporal: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A stack on the session stack's backend whose validations split past 40 records."""
    backend = stack.backend
    name = f"partitions-{backend}"
    base = tmp_path_factory.mktemp(name)
    env = {
        **storage_env(backend, request, name),
        "PASTOOLS_PARTITION_ROWS": str(PARTITION_ROWS),
        "PASTOOLS_PARTITION_BYTES": str(PARTITION_BYTES),
        "PASTOOLS_PARTITION_WINDOW": "2",
    }
    url = database_url(backend, base, request, f"partitions_{backend}")
    running = start_stack(name, base, temporal, url, extra_env=env)
    yield running
    running.stop()


def person(n: int) -> dict[str, Any]:
    """Every seventh has no name, every fifth is too young, every eleventh's age is text."""
    row: dict[str, Any] = {"id": f"p{n:04d}", "name": f"person {n}", "age": 20 + n % 50}
    if n % 7 == 0:
        del row["name"]
    if n % 5 == 0:
        row["age"] = 10
    if n % 11 == 0:
        row["age"] = "old"
    return row


def validated(api: JobsApi) -> tuple[dict[str, Any], bytes, list[str], int]:
    """The finished validation's result, its report, the names of its artifacts and how
    many activities it ran."""
    project = api.create_project()
    content = "".join(json.dumps(person(n)) + "\n" for n in range(RECORDS))
    source = api.write_import(project, "people.jsonl", content)
    imported = api.submit("import", project, source=source, key_column="id")
    assert api.wait_for_status(imported["id"], "completed", "failed")["status"] == "completed"
    assert api.http.put(f"/api/projects/{project}/schema", json=SCHEMA).status_code == 200
    job = api.submit("validation", project, examples_per_path=3, batch_rows=100)
    done = api.wait_for_status(job["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["error"]
    assert done["progress"]["done"] == RECORDS
    report = api.http.get(f"/api/jobs/{job['id']}/artifacts/{done['result']['report']}")
    assert report.status_code == 200
    listed = api.http.get(f"/api/jobs/{job['id']}/artifacts").json()
    names = [artifact["name"] for artifact in listed]
    return done["result"], report.content, names, len(api.activity_attempts(job["id"]))


def test_a_validation_split_into_partitions_matches_one_activity(
    api: JobsApi, partitioned: Stack
) -> None:
    whole, whole_report, _, whole_activities = validated(api)
    with partitioned.client() as client:
        split, split_report, artifacts, split_activities = validated(JobsApi(client, partitioned))

    assert whole["invalid"] > 0
    assert split == whole
    assert split_report == whole_report
    assert artifacts == ["validation-report.jsonl"], "the partitions' parts were left"
    assert whole_activities == 2, "a small validation: its plan and one activity"
    assert split_activities == 1 + 6 + 1, "its plan, six partitions, the report's merge"


def people_csv(*bad_rows: int) -> str:
    """120 rows over 100 keys: k0…k19 again at the end, with other scores (the last in file
    order wins); some names hold a quoted newline or comma, one score is not a number (a
    misfit of the inferred integer type), and the `bad_rows` are short."""
    lines = ["id,name,city,score\n"]
    for n in range(120):
        name = f'"person {n},\nsecond line"' if n % 9 == 0 else f"person {n}"
        score = "n/a" if n == 110 else str(n * 3)
        lines.append(f"k{n % 100},{name},city {n % 7} far away over the hills,{score}\n")
    for n in bad_rows:
        lines[n + 1] = f"k{n},short row\n"
    return "".join(lines)


def activity_names(api: JobsApi, job_id: str) -> list[str]:
    """The activities the job scheduled, in order."""
    shown = api.stack.temporal.cli("workflow", "show", "-w", job_id, "-o", "json").stdout
    return [
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for event in json.loads(shown)["events"]
        if "activityTaskScheduledEventAttributes" in event
    ]


def records(api: JobsApi, project: str) -> dict[str, Any]:
    page = api.http.get(f"/api/projects/{project}/records", params={"limit": 1000}).json()
    assert page["next_cursor"] is None
    return {item["key"]: item["data"] for item in page["items"]}


def imported(
    api: JobsApi, name: str, content: str | bytes, **params: Any
) -> tuple[dict[str, Any], dict[str, Any], bytes, list[str]]:
    """The finished import of `content`: its job, the records, its rejected rows and its
    activities."""
    project = api.create_project()
    source = api.write_import(project, name, content)
    job = api.submit("import", project, source=source, key_column="id", **params)
    done = api.wait_for_status(job["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["error"]
    rejected = api.http.get(f"/api/jobs/{job['id']}/artifacts/{done['result']['rejected_rows']}")
    assert rejected.status_code == 200
    listed = api.http.get(f"/api/jobs/{job['id']}/artifacts").json()
    assert [artifact["name"] for artifact in listed] == ["rejected-rows.jsonl"]
    return done, records(api, project), rejected.content, activity_names(api, job["id"])


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_an_import_split_into_partitions_matches_one_activity(
    api: JobsApi, partitioned: Stack, mode: str
) -> None:
    params = {
        "mode": mode,
        "on_error": "skip",
        "infer_types": True,
        "infer_rows": 50,
        "max_rejected": 2,
    }
    content = people_csv(10, 70, 115)
    whole, whole_records, whole_rejected, whole_activities = imported(
        api, "people.csv", content, **params
    )
    with partitioned.client() as client:
        split, split_records, split_rejected, split_activities = imported(
            JobsApi(client, partitioned), "people.csv", content, **params
        )

    assert split_records == whole_records
    assert split_records["k5"]["score"] == 315, "the last row of a key lost to an earlier one"
    assert split_records["k8"]["name"] == "person 108,\nsecond line"
    assert split["result"] == whole["result"]
    assert (
        whole["result"]["skipped"] == 3
        and whole["result"]["rejected_written"] == 2
        and whole["result"]["column_types"]["score"]["misfits"] == 1
    )
    assert split["progress"]["done"] == split["progress"]["total"] == whole["progress"]["total"]
    assert split_rejected == whole_rejected
    assert whole_activities == ["plan_import", "import_records"], "a small import: one activity"
    parts = split_activities.count("import_records")
    assert parts >= 3
    assert split_activities == [
        "plan_import",
        *["import_records"] * parts,
        "move_staged_import",
        "merge_artifacts",
    ]


def test_a_bad_row_fails_a_partitioned_import_with_nothing_written(partitioned: Stack) -> None:
    with partitioned.client() as client:
        api = JobsApi(client, partitioned)
        project = api.create_project()
        kept = api.write_import(project, "kept.csv", "id,name\nk1,kept\n")
        job = api.submit("import", project, source=kept, key_column="id")
        assert api.wait_for_status(job["id"], "completed", "failed")["status"] == "completed"
        content = people_csv(70)
        line = content[: content.index("k70,short")].count("\n") + 1
        source = api.write_import(project, "people.csv", content)

        job = api.submit("import", project, source=source, key_column="id")
        failed = api.wait_for_status(job["id"], "completed", "failed", timeout=60)

        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "BadRow"
        assert f"people.csv line {line}: expected 4 fields, found 2" in failed["error"]["message"]
        assert records(api, project) == {"k1": {"id": "k1", "name": "kept"}}
        names = activity_names(api, job["id"])
        assert names[0] == "plan_import" and names.count("import_records") >= 2
        assert names[-1] == "discard_staged_import", "the staged rows were left"


def people_parquet(*keyless: int) -> bytes:
    """120 rows in row groups of 10 (about 950 bytes each, uncompressed) over 100 keys:
    k0…k19 again in the last two row groups, with other scores (the last in file order
    wins); the `keyless` rows have no key, a bad row."""
    table = pa.table(
        {
            "id": [None if n in keyless else f"k{n % 100}" for n in range(120)],
            "name": [f"person {n} from a city far away over the hills" for n in range(120)],
            "score": [n * 3 for n in range(120)],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=10)
    return buffer.getvalue()


def test_a_parquet_import_split_into_row_groups_matches_one_activity(
    api: JobsApi, partitioned: Stack
) -> None:
    params = {"on_error": "skip", "max_rejected": 2}
    content = people_parquet(5, 55, 115)
    whole, whole_records, whole_rejected, whole_activities = imported(
        api, "people.parquet", content, **params
    )
    with partitioned.client() as client:
        split, split_records, split_rejected, split_activities = imported(
            JobsApi(client, partitioned), "people.parquet", content, **params
        )

    assert split_records == whole_records
    assert set(split_records) == {f"k{n}" for n in range(100)} - {"k55"}, "row 56 has no key"
    assert split_records["k5"]["score"] == 315, "the last row of a key lost to an earlier one"
    assert split_records["k15"]["score"] == 45, "the keyless row 116 took k15's place"
    assert split["result"] == whole["result"]
    assert whole["result"]["skipped"] == 3 and whole["result"]["rejected_written"] == 2
    assert split["progress"]["done"] == split["progress"]["total"] == 120
    assert split_rejected == whole_rejected
    assert whole_activities == ["plan_import", "import_records"], "a small import: one activity"
    parts = split_activities.count("import_records")
    assert parts >= 3, "k10…k19's two rows in one partition"
    assert split_activities == [
        "plan_import",
        *["import_records"] * parts,
        "move_staged_import",
        "merge_artifacts",
    ]


def test_a_bad_row_in_a_late_row_group_fails_a_parquet_import_with_nothing_written(
    partitioned: Stack,
) -> None:
    with partitioned.client() as client:
        api = JobsApi(client, partitioned)
        project = api.create_project()
        kept = api.write_import(project, "kept.csv", "id,name\nk1,kept\n")
        job = api.submit("import", project, source=kept, key_column="id")
        assert api.wait_for_status(job["id"], "completed", "failed")["status"] == "completed"
        source = api.write_import(project, "people.parquet", people_parquet(115))

        job = api.submit("import", project, source=source, key_column="id")
        failed = api.wait_for_status(job["id"], "completed", "failed", timeout=60)

        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "BadRow"
        assert "people.parquet line 116: the key column 'id' is empty" in failed["error"]["message"]
        assert "the project's records were left as they were" in failed["error"]["message"]
        assert records(api, project) == {"k1": {"id": "k1", "name": "kept"}}
        names = activity_names(api, job["id"])
        assert names[0] == "plan_import" and names.count("import_records") >= 3
        assert names[-1] == "discard_staged_import", "the staged rows were left"


def exportable(n: int) -> dict[str, Any]:
    """Keys without padding, so that each cut falls among keys that are prefixes of their
    neighbours (k2, k20, k200, k201 …); a field only the last key has, values to quote."""
    row: dict[str, Any] = {"id": f"k{n}", "n": n, "text": f'line {n}, "quoted"\nnext'}
    if n % 3 == 0:
        row["tags"] = ["a", n]
    if n == RECORDS - 1:
        row["zz_last_only"] = "late"
    return row


EXPORTS = [("csv", "none"), ("csv", "gzip"), ("jsonl", "zstd")]


def exported(api: JobsApi) -> list[tuple[dict[str, Any], bytes, list[str], int]]:
    """For each of `EXPORTS`: the finished export's result, its file decompressed, the
    names of its artifacts and how many activities it ran."""
    project = project_with(api, [exportable(n) for n in range(RECORDS)])
    outcomes = []
    for export_format, compression in EXPORTS:
        done = finished(
            api, "export", project, format=export_format, compression=compression, batch_rows=100
        )
        assert done["status"] == "completed", done["error"]
        assert done["progress"]["done"] == RECORDS
        written = download(api, done["id"], done["result"]["artifact"]).content
        if compression == "gzip":
            written = gzip.decompress(written)  # every member, in order
        elif compression == "zstd":
            written = (
                zstandard.ZstdDecompressor()
                .stream_reader(io.BytesIO(written), read_across_frames=True)
                .read()
            )
        listed = api.http.get(f"/api/jobs/{done['id']}/artifacts").json()
        names = [artifact["name"] for artifact in listed]
        activities = len(api.activity_attempts(done["id"]))
        outcomes.append((done["result"], written, names, activities))
    return outcomes


def test_an_export_split_into_partitions_writes_the_file_of_one_activity(
    api: JobsApi, partitioned: Stack
) -> None:
    whole = exported(api)
    with partitioned.client() as client:
        split = exported(JobsApi(client, partitioned))

    for (export_format, compression), one, parts in zip(EXPORTS, whole, split, strict=True):
        one_result, one_file, _, one_activities = one
        result, file, artifacts, activities = parts
        assert file == one_file, f"{export_format} {compression}: not the same content"
        assert result["rows"] == one_result["rows"] == RECORDS
        assert artifacts == [one_result["artifact"]], "the partitions' parts were left"
        assert one_activities == 2, "a small export: its plan and one activity"
        assert activities == 1 + 1 + 6 + 1, "its plan, its columns, six parts, their merge"
        if compression == "none":
            assert result == one_result, "the same file, byte for byte"
    header, *rows = csv.reader(io.StringIO(split[0][1].decode()))
    by_key = {row[0]: row for row in rows}
    assert header == ["key", "id", "n", "tags", "text", "zz_last_only"], "one header"
    assert len(rows) == len(by_key) == RECORDS, "each record exactly once"
    assert set(by_key) == {f"k{n}" for n in range(RECORDS)}
    assert by_key[f"k{RECORDS - 1}"][-1] == "late", "the last part's field in every part"


TARGETS = 10
"""Keys t0…t9 of the project that `relationship` points to: t10…t12 point nowhere."""


def record_line(n: int) -> str:
    """One record as a JSON Lines import keeps it, as written: `code` repeats across every
    key range, in spellings Python's `json` reads as equal (1.0 and 1.00, an object's keys
    in either order) or not (1, "1", true); `ref` repeats once, far apart."""
    codes = ["1", "1.0", "1.00", '"1"', "true", '{"a": 1, "b": 2}', '{"b": 2, "a": 1}', "null"]
    code = codes[n % len(codes)] if n % 3 else str(n)
    ref = "ref-last" if n in (3, RECORDS - 2) else f"ref-{n}"
    name = "" if n % 7 == 0 else f', "name": "person {n}"'
    return (
        f'{{"id": "p{n:04d}"{name}, "age": {20 + n % 50 if n % 5 else 10}, '
        f'"color": "{["red", "green", "blue", "teal"][n % 4]}", "friend": "t{n % 13}", '
        f'"code": {code}, "meta": {{"ref": "{ref}"}}}}\n'
    )


def suite_for(target: str) -> list[dict[str, Any]]:
    return [
        {"kind": "unique", "name": "code unique", "field": "code"},
        {"kind": "not_null", "name": "name present", "field": "name", "error_if": ">20%"},
        {"kind": "accepted_values", "name": "color", "field": "color",
         "values": ["red", "green", "blue"], "severity": "warn"},
        {"kind": "row_count", "name": "size", "min": 1, "max": 200},
        {"kind": "regex", "name": "name shape", "field": "name", "pattern": "^person [0-9]+$"},
        {"kind": "range", "name": "adult", "field": "age", "min": 18, "warn_if": ">10",
         "error_if": ">30%"},
        {"kind": "relationship", "name": "friend exists", "field": "friend",
         "to_project": target},
        {"kind": "unique", "name": "ref unique", "field": "meta.ref"},
    ]  # fmt: skip


def split_or_whole_run(
    api: JobsApi,
) -> tuple[dict[str, Any], dict[str, bytes], list[Any], list[str]]:
    """The finished test run, its three files, each test's history and its activities."""
    target = api.create_project("split-tests-target")  # the same names on either stack:
    import_rows(api, target, [{"id": f"t{n}"} for n in range(TARGETS)])
    project = api.create_project("split-tests")  # the same reports, byte for byte
    source = api.write_import(project, "people.jsonl", "".join(map(record_line, range(RECORDS))))
    imported = api.submit("import", project, source=source, key_column="id")
    assert api.wait_for_status(imported["id"], "completed", "failed")["status"] == "completed"
    response = api.http.put(f"/api/projects/{project}/tests", json={"tests": suite_for(target)})
    assert response.status_code == 200, response.text
    done = finished(api, "test_run", project, failing_rows_per_test=7)
    assert done["status"] == "completed", done["error"]
    assert done["progress"]["done"] == done["progress"]["total"]
    files = {
        name: download(api, done["id"], name).content
        for name in ("test-results.json", "test-results.xml", "failing-rows.jsonl")
    }
    listed = api.http.get(f"/api/jobs/{done['id']}/artifacts").json()
    assert sorted(artifact["name"] for artifact in listed) == sorted(files), "parts were left"
    histories = []
    for test in suite_for(target):
        page = api.http.get(f"/api/projects/{project}/tests/{test['name']}/history").json()
        assert [item["job_id"] for item in page["items"]] == [done["id"]], "one outcome a test"
        histories.append(
            {k: v for k, v in page["items"][0].items() if k not in ("job_id", "ran_at")}
        )
    return done, files, histories, activity_names(api, done["id"])


def test_a_test_run_split_into_partitions_matches_one_activity(
    api: JobsApi, partitioned: Stack
) -> None:
    whole, whole_files, whole_history, whole_activities = split_or_whole_run(api)
    with partitioned.client() as client:
        split, split_files, split_history, split_activities = split_or_whole_run(
            JobsApi(client, partitioned)
        )

    verdicts = {
        v["name"]: (v["status"], v["failing"], v["total"]) for v in whole["result"]["results"]
    }
    assert verdicts == {
        "code unique": ("error", 129, 230),  # 134 codes in 5 classes (1, 1.0, "1", true, {})
        "name present": ("warn", 33, 230),  # 14 %: not over 20 %
        "color": ("warn", 57, 230),
        "size": ("error", 1, 1),
        "name shape": ("pass", 0, 230),
        "adult": ("warn", 46, 230),
        "friend exists": ("error", 51, 230),
        "ref unique": ("error", 1, 230),
    }
    assert split["result"] == whole["result"]
    assert split_files == whole_files, "the same JSON, JUnit XML and failing rows"
    assert split_history == whole_history
    assert whole_activities == ["plan_record_partitions", "run_data_tests"]
    assert split_activities == [
        "plan_record_partitions",
        *["judge_test_partition"] * 7,  # the whole-dataset tests, six key ranges
        "finish_test_run",
    ]


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)  # the benchmark's default
def test_the_partitions_benchmark_runs_each_job_on_one_worker_and_on_two(
    partitioned: Stack, tmp_path: Path
) -> None:
    """`python -m bench.partitions` on this stack rather than one of its own (its figures
    are not judged here): every job split, with one worker and with two, the same result
    (the benchmark checks it), and the second worker stopped at the end."""
    source = tmp_path / "people.csv"
    generate_csv(source, 120)
    with partitioned.client() as client:
        measured = measure_jobs(Bench(JobsApi(client, partitioned), source, 120), list(JOBS))
    assert [row.job for row in measured] == list(JOBS)
    for row in measured:
        assert row.one.timeline.partitions == row.two.timeline.partitions > 1, row.job
        assert (len(row.one.cpu), len(row.two.cpu)) == (1, 2), row.job
    assert len(table(measured)) == 2 + len(JOBS) + 3 + len(JOBS)
    assert partitioned.worker_replicas == []
