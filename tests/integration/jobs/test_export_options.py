"""Exports through the API on both databases: the bytes of awkward values (PostgreSQL's
server-built CSV and JSON Lines, SQLite's stored-text shortcut) are those the encoder
writes for the decoded records; compressed files hold the uncompressed one; chosen
columns come in their order; Parquet row groups have the asked size."""

import gzip
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from pastools_jobs.datasets.export_encoding import RecordEncoder
from pastools_jobs.datasets.records import field_names, record_batches
from pastools_jobs.db.engine import Database
from tests.integration.jobs.test_export_validation_tests import download, finished, project_with
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration

TRICKY: list[dict[str, Any]] = [
    {"id": "a,1", "text": 'say "hi", ok\nbye', "n": 1.5, "yes": True, "none": None},
    {"id": "b", "text": "", "tiny": 1e-07, "big": 12345678901234567890, "cr": "x\ry"},
    {"id": "c", "nested": {"list": [1, 2.5, "é", {"deep": -3e-06}], "empty": {}}, "text": "日本"},
    {"id": "d\te", "text": "\\N", "marker": "~pastools-export-row~"},
    {"id": "f", "quote": '"', "slash": "a\\b", "n": 0},
]


def expected_bytes(api: JobsApi, project: str, export_format: str) -> bytes:
    """What the encoder writes for the records as the database decodes them."""
    db = Database(api.stack.database_url, application_name="pastools-tests")
    try:
        with db.transaction() as session:
            fields = field_names(session, project) if export_format == "csv" else []
        encoder = RecordEncoder(export_format, fields, chosen=False)  # type: ignore[arg-type]
        return encoder.header() + b"".join(map(encoder.encode, record_batches(db, project)))
    finally:
        db.dispose()


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_awkward_values_are_written_as_the_encoder_writes_them(
    api: JobsApi, export_format: str
) -> None:
    project = project_with(api, TRICKY)

    done = finished(api, "export", project, format=export_format)

    assert done["status"] == "completed", done["error"]
    written = download(api, done["id"], done["result"]["artifact"]).content
    assert written == expected_bytes(api, project, export_format)
    if export_format == "jsonl":
        lines = [json.loads(line) for line in written.decode().splitlines()]
        assert [line["data"] for line in lines] == TRICKY
        assert '"tiny": 1e-07' in written.decode(), "numbers as Python writes them"


def decompressed(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        return reader.read()
    return data


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_a_compressed_export_holds_the_uncompressed_file(api: JobsApi, export_format: str) -> None:
    project = project_with(api, TRICKY)
    plain = finished(api, "export", project, format=export_format)
    content = download(api, plain["id"], plain["result"]["artifact"]).content

    for compression, suffix, media in [("gzip", ".gz", "gzip"), ("zstd", ".zst", "zstd")]:
        done = finished(api, "export", project, format=export_format, compression=compression)
        assert done["status"] == "completed", done["error"]
        name = done["result"]["artifact"]
        assert name == f"export.{export_format}{suffix}"
        assert done["result"]["compression"] == compression
        response = download(api, done["id"], name)
        assert response.headers["content-type"] == f"application/{media}"
        assert decompressed(name, response.content) == content


def test_chosen_columns_come_in_their_order_and_unknown_ones_are_refused(api: JobsApi) -> None:
    project = project_with(api, TRICKY)

    csv_done = finished(api, "export", project, format="csv", columns=["text", "n"])
    jsonl_done = finished(api, "export", project, format="jsonl", columns=["n", "id"])
    unknown = finished(api, "export", project, format="csv", columns=["text", "nope"])
    twice = api.http.post(
        "/api/jobs",
        json={"type": "export", "project_id": project, "params": {"columns": ["n", "n"]}},
    )

    csv_lines = download(api, csv_done["id"], "export.csv").text.splitlines()
    assert csv_lines[0] == "key,text,n"
    assert csv_lines[-1] == "f,,0"
    jsonl = [
        json.loads(line)
        for line in download(api, jsonl_done["id"], "export.jsonl").text.splitlines()
    ]
    assert list(jsonl[0]["data"]) == ["n", "id"]
    assert jsonl[1]["data"] == {"n": None, "id": "b"}
    assert unknown["status"] == "failed"
    assert unknown["error"]["type"] == "UnknownColumn"
    assert "'nope'" in unknown["error"]["message"]
    assert api.activity_attempts(unknown["id"]) == [1, 1], (
        "an input error was retried (after the plan)"
    )
    assert twice.status_code == 422
    assert "named twice" in twice.text


def test_parquet_row_groups_have_the_asked_size(api: JobsApi) -> None:
    project = project_with(api, [{"id": f"r{n:05d}", "n": n} for n in range(2500)])

    done = finished(
        api, "export", project, format="parquet", row_group_rows=1000, columns=["n"], batch_rows=300
    )

    assert done["status"] == "completed", done["error"]
    assert done["result"]["compression"] == "zstd"
    parquet = pq.ParquetFile(io.BytesIO(download(api, done["id"], "export.parquet").content))
    groups = [parquet.metadata.row_group(n) for n in range(parquet.num_row_groups)]
    assert [group.num_rows for group in groups] == [1000, 1000, 500]
    assert groups[0].column(1).compression == "ZSTD"
    table = parquet.read()
    assert table.column_names == ["key", "n"]
    assert table.column("n").to_pylist()[:3] == ["0", "1", "2"]
