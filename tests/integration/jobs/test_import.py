"""Import jobs on real files: formats, upserts, bad input, cancel and kill-and-resume."""

import codecs
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration


def records(api: JobsApi, project: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = api.http.get(f"/api/projects/{project}/records", params=params).json()
        found |= {item["key"]: item["data"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def run_import(api: JobsApi, project: str, **params) -> dict:
    job = api.submit("import", project, **params)
    return api.wait_for_status(job["id"], "completed", "failed", timeout=60)


def test_csv_import_keyed_by_a_column_and_reimport_upserts(api: JobsApi) -> None:
    project = api.create_project()
    source = api.write_import(
        project, f"{project}.csv", 'id,name,city\n1,Ada,"London, UK"\n2,Linus,Helsinki\n'
    )

    done = run_import(api, project, source=source, key_column="id")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["imported"] == 2
    assert records(api, project) == {
        "1": {"id": 1, "name": "Ada", "city": "London, UK"},
        "2": {"id": 2, "name": "Linus", "city": "Helsinki"},
    }
    assert done["progress"]["percent"] == 100

    api.write_import(project, source, "id,name,city\n2,Linus,Portland\n3,Grace,Arlington\n")
    again = run_import(api, project, source=source, key_column="id")
    assert again["status"] == "completed"
    assert set(records(api, project)) == {"1", "2", "3"}
    assert records(api, project)["2"]["city"] == "Portland"


def test_jsonl_and_parquet_imports(api: JobsApi) -> None:
    project = api.create_project()
    lines = "\n".join(json.dumps({"sku": f"s{i}", "qty": i}) for i in range(5))
    jsonl = api.write_import(project, f"{project}.jsonl", lines + "\n")
    assert run_import(api, project, source=jsonl, key_column="sku")["status"] == "completed"

    table = pa.table({"sku": ["p1", "p2"], "price": [1.5, 2.25]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    parquet = api.write_import(project, f"{project}.parquet", buffer.getvalue())
    done = run_import(api, project, source=parquet, key_column="sku")
    assert done["status"] == "completed", done["error"]

    found = records(api, project)
    assert found["s3"] == {"sku": "s3", "qty": 3}
    assert found["p2"] == {"sku": "p2", "price": 2.25}
    assert len(found) == 7


def test_a_key_repeated_in_a_later_batch_of_a_first_import_keeps_its_last_row(
    api: JobsApi,
) -> None:
    """A first import copies its batches without looking keys up: a key met again in a
    later batch is still upserted, the later row winning, and so are the batches after."""
    project = api.create_project()
    rows = [f"{i},first\n" for i in range(250)] + ["7,second\n"]
    rows += [f"{i},after\n" for i in range(250, 400)] + ["300,last\n"]
    source = api.write_import(project, f"{project}.csv", "id,seen\n" + "".join(rows))

    done = run_import(api, project, source=source, key_column="id", batch_rows=100)

    assert done["status"] == "completed", done["error"]
    assert done["result"]["imported"] == 402
    found = records(api, project)
    assert len(found) == 400
    assert (found["7"]["seen"], found["300"]["seen"], found["8"]["seen"]) == (
        "second",
        "last",
        "first",
    )
    assert found["399"]["seen"] == "after"


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"id,name\n1,a\n2,b,extra\n3,c\n", 3, "expected 2 fields, found 3"),
        (b"id,name\n1,a\n2,\xff\xfe\n3,c\n", 3, "not valid utf-8"),
        (b'id,name\n1,a\n2,"unbalanced\n', 3, "malformed CSV"),
    ],
)
def test_bad_csv_row_fails_the_job_naming_file_line_and_reason_and_keeps_good_rows(
    api: JobsApi, content: bytes, line: int, reason: str
) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", content)

    failed = run_import(api, project, source=source, key_column="id", encoding="utf-8")

    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "BadRow"
    assert f"{source} line {line}" in failed["error"]["message"]
    assert reason in failed["error"]["message"]
    assert set(records(api, project)) == {"1"}, "good rows before the bad one were lost"


def test_skip_mode_counts_bad_rows_and_keeps_the_first_examples(api: JobsApi) -> None:
    project = api.create_project()
    lines = [json.dumps({"k": "a"}), "[1, 2]", "{not json", json.dumps({"k": "b"}), '"x"']
    source = api.write_import(project, f"{project}.jsonl", "\n".join(lines) + "\n")

    done = run_import(api, project, source=source, key_column="k", on_error="skip", max_examples=2)

    assert done["status"] == "completed"
    assert (done["result"]["imported"], done["result"]["skipped"]) == (2, 3)
    assert [(e["line"], e["reason"]) for e in done["result"]["errors"]] == [
        (2, "a JSON list, not an object"),
        (3, "not valid JSON (Expecting property name enclosed in double quotes)"),
    ]
    assert set(records(api, project)) == {"a", "b"}


@pytest.mark.parametrize(
    ("name", "content", "params", "reason"),
    [
        ("empty.csv", b"", {}, "empty"),
        ("nokey.csv", b"a,b\n1,2\n", {"key_column": "id"}, "key column 'id'"),
        ("random.parquet", b"\x00garbage" * 10, {}, "Parquet"),
    ],
)
def test_unusable_source_fails_with_a_clear_reason(
    api: JobsApi, name: str, content: bytes, params: dict, reason: str
) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}-{name}", content)
    failed = run_import(api, project, source=source, **params)
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "SourceUnusable"
    assert reason in failed["error"]["message"]


def test_import_into_a_missing_project_fails_clearly(api: JobsApi) -> None:
    source = api.write_import("no-such-project", "orphan.csv", "id\n1\n")
    failed = run_import(api, "no-such-project", source=source)
    assert failed["error"]["type"] == "ProjectNotFound"


def big_csv(rows: int) -> str:
    return "id,value\n" + "".join(f"{i},{i * 7}\n" for i in range(rows))


def test_cancelled_import_leaves_whole_batches_only(api: JobsApi) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", big_csv(400_000))
    job = api.submit("import", project, source=source, key_column="id", batch_rows=1000)
    api.wait_for_job(job["id"], lambda j: j["progress"]["done"] > 0, what="some progress")

    api.http.post(f"/api/jobs/{job['id']}/cancel")
    cancelled = api.wait_for_status(job["id"], "cancelled", timeout=30)

    count = api.http.get(f"/api/projects/{project}").json()["records"]
    assert count % 1000 == 0, f"{count} records: a batch was half written"
    assert 0 < count < 400_000
    assert cancelled["completed_at"] is not None


def test_worker_killed_mid_import_resumes_and_imports_each_key_once(api: JobsApi) -> None:
    project = api.create_project()
    rows = 300_000
    source = api.write_import(project, f"{project}.csv", big_csv(rows))
    job = api.submit("import", project, source=source, key_column="id", batch_rows=1000)
    api.wait_for_job(
        job["id"], lambda j: j["progress"]["percent"] >= 20, what="a fifth imported", timeout=60
    )
    api.wait_checkpointed(job["id"])

    api.stack.kill_worker()
    api.stack.start_worker()

    done = api.wait_for_status(job["id"], "completed", timeout=90)
    assert done["result"]["resumed_from_row"] > 0, "the import started again from the top"
    assert api.http.get(f"/api/projects/{project}").json()["records"] == rows
    sample = api.http.get(f"/api/projects/{project}/records/12345").json()
    assert sample["data"] == {"id": 12345, "value": 12345 * 7}


WIDE_CSV = 'id,name\n1,Björk\n2,"Zoë, 😀"\n3,ਗੁਰੂ\n'
"""A non-BMP character (a surrogate pair in UTF-16), and Gurmukhi, whose UTF-16-LE code
units hold the byte of a newline: a reader splitting bytes at b"\\n" breaks on both."""


@pytest.mark.parametrize(
    ("encoding", "content"),
    [
        ("utf-16", codecs.BOM_UTF16_LE + WIDE_CSV.encode("utf-16-le")),
        ("utf-16", codecs.BOM_UTF16_BE + WIDE_CSV.encode("utf-16-be")),
        ("utf-16-le", WIDE_CSV.encode("utf-16-le")),
        ("utf-32", codecs.BOM_UTF32_LE + WIDE_CSV.encode("utf-32-le")),
        ("utf-32", codecs.BOM_UTF32_BE + WIDE_CSV.encode("utf-32-be")),
    ],
    ids=["utf-16-bom-le", "utf-16-bom-be", "utf-16-le", "utf-32-bom-le", "utf-32-bom-be"],
)
def test_utf16_and_utf32_csv_imports_with_the_right_values(
    api: JobsApi, encoding: str, content: bytes
) -> None:
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", content)

    done = run_import(api, project, source=source, key_column="id", encoding=encoding)

    assert done["status"] == "completed", done["error"]
    assert records(api, project) == {
        "1": {"id": 1, "name": "Björk"},
        "2": {"id": 2, "name": "Zoë, 😀"},
        "3": {"id": 3, "name": "ਗੁਰੂ"},
    }
