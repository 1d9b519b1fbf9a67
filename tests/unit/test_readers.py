"""The import readers on files in memory: what one batch may hold, however the file
packs its rows, wide encodings, and resuming at a checkpoint."""

import codecs
import io
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pastools_jobs.datasets.parquet_reader import row_sizes
from pastools_jobs.datasets.readers import CsvOptions, SourceFormat, read_batches
from pastools_jobs.datasets.reading import Batch, Position, ReadLimits, SourceUnusable

KiB, MiB = 1 << 10, 1 << 20
TOP = Position()


def batches(
    content: bytes,
    source_format: SourceFormat,
    limits: ReadLimits,
    start: Position = TOP,
    encoding: str = "utf-8",
) -> Iterator[Batch]:
    return read_batches(
        io.BytesIO(content), source_format, start, "id", CsvOptions(encoding=encoding), limits
    ).batches


def documents(read: list[Batch]) -> list[dict[str, Any]]:
    return [json.loads(document) for batch in read for _, _, document in batch.rows]


def parquet(table: pa.Table, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def dictionary_bomb(rows: int, length: int) -> bytes:
    """One long string on every row: Parquet stores it once, in a few hundred bytes."""
    table = pa.table({"id": [str(i) for i in range(rows)], "blob": ["x" * length] * rows})
    return parquet(table, compression="zstd", compression_level=22, store_schema=False)


def peak_python_memory(read: Iterator[Batch]) -> int:
    """Batches consumed one at a time, as the import does; the peak of Python's heap."""
    tracemalloc.start()
    try:
        for _ in read:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_parquet_dictionary_bomb_fails_naming_the_record_limit_before_decoding_it() -> None:
    content = dictionary_bomb(rows=50, length=2_000_000)
    assert len(content) < 1 * KiB, "the file of the issue: 100 MB of rows in under 1 KiB"

    with pytest.raises(SourceUnusable) as refused:
        peak_python_memory(batches(content, "parquet", ReadLimits(MiB, 16 * MiB, 5000)))

    assert str(refused.value).startswith(
        "row 1 is larger than the 1 MiB record limit (PASTOOLS_IMPORT_MAX_RECORD_BYTES)"
    )


def test_parquet_batches_hold_no_more_than_the_byte_budget_whatever_batch_rows() -> None:
    content = dictionary_bomb(rows=200, length=500 * KiB)  # each row within the record limit
    limits = ReadLimits(MiB, 4 * MiB, 100_000)

    read = list(batches(content, "parquet", limits))

    assert [row[1] for batch in read for row in batch.rows] == [str(i) for i in range(200)]
    assert max(batch.size for batch in read) <= limits.batch_bytes + limits.record_bytes
    assert peak_python_memory(batches(content, "parquet", limits)) < 4 * limits.batch_bytes


def test_a_parquet_page_that_would_inflate_a_hundredfold_is_refused_from_the_footer() -> None:
    table = pa.table({"id": ["1"], "blob": ["x" * (32 * MiB)]})
    content = parquet(table, compression="zstd", use_dictionary=False)

    with pytest.raises(SourceUnusable) as refused:
        peak_python_memory(batches(content, "parquet", ReadLimits(MiB, 4 * MiB, 5000)))

    message = str(refused.value)
    assert message.startswith("row group 1, column 'blob' would decode to 32.0 MiB from ")
    assert message.endswith("past the 4 MiB batch limit (PASTOOLS_IMPORT_BATCH_MAX_BYTES)")


def test_a_corrupt_parquet_page_makes_the_source_unusable_not_a_retry() -> None:
    table = pa.table({"id": [str(i) for i in range(1000)], "v": [f"v{i}" for i in range(1000)]})
    content = bytearray(parquet(table, compression="zstd"))
    content[600:640] = b"\xff" * 40  # inside the first column's pages, the footer intact

    with pytest.raises(SourceUnusable, match="not a readable Parquet file"):
        list(batches(bytes(content), "parquet", ReadLimits(MiB, 16 * MiB, 5000)))


def test_a_parquet_import_resumes_after_its_checkpoint_row_across_row_groups() -> None:
    table = pa.table({"id": [str(i) for i in range(1, 101)], "n": list(range(1, 101))})
    content = parquet(table, row_group_size=30)
    limits = ReadLimits(MiB, 16 * MiB, 25)

    second = list(batches(content, "parquet", limits))[1]
    resumed = list(batches(content, "parquet", limits, start=second.end))

    assert second.end == Position(0, 50, 50)
    assert [doc["n"] for doc in documents(resumed)] == list(range(51, 101))
    assert resumed[-1].end == Position(0, 100, 100)


def test_nested_parquet_rows_are_measured_through_their_dictionaries_and_read_whole() -> None:
    rows = [
        {"id": "a", "tags": ["xy", "z"], "st": {"s": "uvw", "n": 1}, "m": [("k", "vv")]},
        {"id": "b", "tags": None, "st": None, "m": []},
        {"id": "c", "tags": ["xy"] * 3, "st": {"s": None, "n": 2}, "m": None},
    ]
    schema = pa.schema(
        {
            "id": pa.string(),
            "tags": pa.list_(pa.string()),
            "st": pa.struct({"s": pa.string(), "n": pa.int64()}),
            "m": pa.map_(pa.string(), pa.string()),
        }
    )
    content = parquet(pa.Table.from_pylist(rows, schema), store_schema=False)
    as_read = pq.ParquetFile(
        io.BytesIO(content), read_dictionary=["tags.list.element", "st.s", "m.key_value.value"]
    )
    records = next(as_read.iter_batches())

    assert row_sizes(records) == [1 + 3 + 3 + 8 + 3, 1, 1 + 6 + 8]
    assert row_sizes(records.slice(1)) == [1, 1 + 6 + 8]
    read = documents(list(batches(content, "parquet", ReadLimits(MiB, MiB, 5000))))
    assert [doc["m"] for doc in read] == [[["k", "vv"]], [], None]
    assert [doc["tags"] for doc in read] == [["xy", "z"], None, ["xy"] * 3]


@pytest.mark.parametrize("source_format", ["csv", "jsonl"])
def test_text_batches_end_at_the_byte_budget(source_format: SourceFormat) -> None:
    value = "v" * (100 * KiB)
    if source_format == "csv":
        content = "id,value\n" + "".join(f"{i},{value}\n" for i in range(100))
    else:
        content = "".join(json.dumps({"id": str(i), "value": value}) + "\n" for i in range(100))
    limits = ReadLimits(MiB, MiB, 5000)

    read = list(batches(content.encode(), source_format, limits))

    assert len(documents(read)) == 100
    assert max(batch.size for batch in read) <= limits.batch_bytes + limits.record_bytes
    assert len(read) >= 10


def test_a_csv_record_spanning_many_short_lines_is_refused_past_the_record_limit() -> None:
    header = "id,a\n"
    record = "1," + ",".join(['"x\ny"'] * 2000) + "\n"  # a field is short, and each line

    with pytest.raises(SourceUnusable) as refused:
        list(batches((header + record).encode(), "csv", ReadLimits(4 * KiB, MiB, 5000)))

    assert str(refused.value).startswith("the record from line 2 to line ")
    assert str(refused.value).endswith(
        "is longer than the 4 KiB limit (PASTOOLS_IMPORT_MAX_RECORD_BYTES)"
    )


def test_a_utf16_line_longer_than_the_limit_is_refused_unread() -> None:
    content = codecs.BOM_UTF16_LE + f"id,name\n1,{'ਗ' * 3000}\n".encode("utf-16-le")

    with pytest.raises(SourceUnusable, match="line 2 is longer than the 4 KiB limit"):
        list(batches(content, "csv", ReadLimits(4 * KiB, MiB, 5000), encoding="utf-16"))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp037", "utf-16-le", "utf-32"])
def test_a_csv_in_any_codec_splits_where_that_codec_writes_its_newlines(encoding: str) -> None:
    rows = [{"id": str(i), "name": f"Zoë {i}"} for i in range(1, 4)]
    text = "id,name\n" + "".join(f"{row['id']},{row['name']}\n" for row in rows)

    read = list(batches(text.encode(encoding), "csv", ReadLimits(MiB, MiB, 2), encoding=encoding))

    assert documents(read) == rows
    assert [batch.end.line for batch in read] == [3, 4]


def test_a_utf16_csv_resumes_at_the_byte_offset_of_its_checkpoint() -> None:
    header, rows = "id,name\n", [f"{i},ਗੁਰੂ {i} 😀\n" for i in range(1, 6)]
    content = codecs.BOM_UTF16_LE + (header + "".join(rows)).encode("utf-16-le")
    limits = ReadLimits(MiB, MiB, 2)

    first = next(batches(content, "csv", limits, encoding="utf-16"))
    checkpoint = first.end
    resumed = list(batches(content, "csv", limits, start=checkpoint, encoding="utf-16"))

    before = codecs.BOM_UTF16_LE + (header + rows[0] + rows[1]).encode("utf-16-le")
    assert checkpoint == Position(len(before), 3, 2)
    assert [doc["id"] for doc in documents([first])] == ["1", "2"]
    assert documents(resumed) == [{"id": str(i), "name": f"ਗੁਰੂ {i} 😀"} for i in range(3, 6)]
    assert resumed[-1].end.offset == len(content)


def test_a_parquet_nan_or_infinity_is_a_bad_row_not_a_record() -> None:
    """JSON has no NaN or infinity: PostgreSQL's jsonb refuses a document holding one."""
    nan, inf = float("nan"), float("inf")
    table = pa.table({"id": ["1", "2", "3"], "delay": [nan, 2.5, -inf]})
    read = list(batches(parquet(table), "parquet", ReadLimits(MiB, MiB, 100)))
    assert documents(read) == [{"id": "2", "delay": 2.5}]
    assert [error.line for batch in read for error in batch.errors] == [1, 3]
