"""Malformed and hostile import files: each fails (or is skipped) saying why in words a
user understands, the worker's memory stays bounded, and it goes on working."""

import io
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration

MiB = 1 << 20
MEMORY_GROWTH_CEILING = 64 * MiB
"""Above the worker's resident size before the job; a file may be far larger than this."""
LONG_LINE = 100 * MiB
"""Past the issue's 10 MB: a reader that held the line would break the memory ceiling."""


def zip_bomb() -> bytes:
    """100 MiB of zeros in about 100 KiB: never to be decompressed by an import."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("data.csv", "w", force_zip64=True) as member,
    ):
        for _ in range(100):
            member.write(bytes(MiB))
    return buffer.getvalue()


def parquet_of_one_long_string(rows: int, length: int, use_dictionary: bool) -> bytes:
    """The same long string on every row, zstd-compressed: with a dictionary, Parquet
    stores it once (the issue's 906-byte file of 100 MB); without, one page inflates."""
    table = pa.table({"id": [str(i) for i in range(rows)], "blob": ["x" * length] * rows})
    buffer = io.BytesIO()
    pq.write_table(
        table,
        buffer,
        compression="zstd",
        compression_level=22,
        use_dictionary=use_dictionary,
        store_schema=False,
    )
    return buffer.getvalue()


def corrupt_parquet() -> bytes:
    """A readable footer over a damaged page: an input error, not worth one retry."""
    table = pa.table({"id": [str(i) for i in range(1000)], "v": [f"v{i}" for i in range(1000)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    content = bytearray(buffer.getvalue())
    content[600:640] = b"\xff" * 40
    return bytes(content)


@dataclass(frozen=True)
class Hostile:
    name: str
    content: Callable[[], bytes]
    """Made when the test runs, not when it is collected: some are large."""
    error_type: str
    reason: str
    heavy: bool = False


CASES = [
    Hostile(
        "random.csv",
        lambda: random.Random(6).randbytes(MiB),
        "SourceUnusable",
        "looks like binary data, not CSV text",
    ),
    Hostile(
        "long-line.csv",
        lambda: b"id,name\n1," + b"x" * LONG_LINE + b"\n2,b\n",
        "SourceUnusable",
        "line 2 is longer than the 1 MiB limit",
        heavy=True,
    ),
    Hostile(
        "unbalanced.csv",
        lambda: b'id,name\n1,"never closed\n' + b"2,b\n" * (2 * MiB),
        "BadRow",
        "line 2: malformed CSV (field larger than field limit",
        heavy=True,
    ),
    Hostile(
        "latin1.csv",
        lambda: b"id,name\n1,a\n2,Bj\xf6rk\n",
        "BadRow",
        "line 3: not valid utf-8 at byte 16",
    ),
    Hostile(
        "arrays.jsonl", lambda: b"[1, 2]\n[3, 4]\n", "BadRow", "line 1: a JSON list, not an object"
    ),
    Hostile(
        "deep.jsonl",
        lambda: b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "BadRow",
        "line 1: JSON nested too deeply",
    ),
    Hostile("empty.csv", bytes, "SourceUnusable", "the file is empty"),
    Hostile("empty.jsonl", bytes, "SourceUnusable", "the file is empty"),
    Hostile("bomb.csv", zip_bomb, "SourceUnusable", "the file looks like a ZIP archive, not CSV"),
    Hostile(
        "dictionary-bomb.parquet",
        lambda: parquet_of_one_long_string(50, 2_000_000, use_dictionary=True),
        "SourceUnusable",
        "row 1 is larger than the 1 MiB record limit (PASTOOLS_IMPORT_MAX_RECORD_BYTES)",
    ),
    Hostile(
        "inflating-page.parquet",
        lambda: parquet_of_one_long_string(1, 128 * MiB, use_dictionary=False),
        "SourceUnusable",
        "past the 16 MiB batch limit (PASTOOLS_IMPORT_BATCH_MAX_BYTES)",
        heavy=True,
    ),
    Hostile("corrupt.parquet", corrupt_parquet, "SourceUnusable", "not a readable Parquet file"),
]


class PeakMemory:
    """The worker's peak resident size, from the kernel: VmHWM, reset before the job."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak to the current size
        self.baseline = self._read("VmRSS")

    def _read(self, field: str) -> int:
        for line in self.status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"{field} missing from {self.status}")

    @property
    def growth(self) -> int:
        return self._read("VmHWM") - self.baseline


def run_import(api: JobsApi, project: str, **params) -> dict:
    job = api.submit("import", project, **params)
    return api.wait_for_status(job["id"], "completed", "failed", timeout=60)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file_fails_clearly_in_bounded_memory_and_the_worker_goes_on(
    api: JobsApi, case: Hostile
) -> None:
    if case.heavy and api.stack.backend != "sqlite":
        pytest.skip("a large file: once, on SQLite, is enough")
    project = api.create_project()
    source = api.write_import(project, f"{project}-{case.name}", case.content())
    assert_imports_a_good_file(api, project)  # and the worker has loaded all it needs
    assert api.stack.worker is not None
    memory = PeakMemory(api.stack.worker.pid)

    failed = run_import(api, project, source=source, key_column="id", encoding="utf-8")

    assert failed["status"] == "failed"
    assert failed["error"]["type"] == case.error_type, failed["error"]
    assert case.reason in failed["error"]["message"], failed["error"]["message"]
    assert memory.growth < MEMORY_GROWTH_CEILING, f"the worker grew by {memory.growth} bytes"
    assert_imports_a_good_file(api, project)


def assert_imports_a_good_file(api: JobsApi, project: str) -> None:
    source = api.write_import(project, f"{project}-ok.csv", "id\n1\n")
    done = run_import(api, project, source=source)
    assert done["status"] == "completed", done["error"]


def test_bad_lines_are_skipped_with_their_reasons_under_on_error_skip(api: JobsApi) -> None:
    project = api.create_project()
    content = b'{"id": "a"}\n[1, 2]\n{"id": "b", "name": "Bj\xf6rk"}\n{"id": "c"}\n'
    source = api.write_import(project, f"{project}.jsonl", content)

    done = run_import(api, project, source=source, key_column="id", on_error="skip")

    assert done["status"] == "completed", done["error"]
    assert (done["result"]["imported"], done["result"]["skipped"]) == (2, 2)
    assert [(e["line"], e["reason"]) for e in done["result"]["errors"]] == [
        (2, "a JSON list, not an object"),
        (3, "not valid UTF-8 at byte 42"),
    ]


def test_a_source_swapped_for_a_symlink_out_after_submission_is_not_read(
    api: JobsApi, tmp_path: Path
) -> None:
    """The import checks the source again when it opens it: here, on a retry."""
    if api.stack.on_object_store:
        pytest.skip("a symlink is a thing of local disk: an object store has none")
    project = api.create_project()
    source = api.write_import(project, f"{project}.csv", b"")
    job = api.submit("import", project, source=source)
    assert api.wait_for_status(job["id"], "failed")["error"]["type"] == "SourceUnusable"
    secret = tmp_path / "secret.csv"
    secret.write_text("id,password\n1,hunter2\n")
    swapped = api.stack.base / "imports" / project / source
    swapped.unlink()
    swapped.symlink_to(secret)

    assert api.http.post(f"/api/jobs/{job['id']}/retry").status_code == 200
    failed = api.wait_for_status(job["id"], "failed")

    assert failed["error"]["type"] == "UnsafeSource", failed["error"]
    assert "outside the import directory" in failed["error"]["message"]
    assert api.http.get(f"/api/projects/{project}").json()["records"] == 0
