"""Where a big import is cut: every cut is a record start (a Parquet file's a row group's
start), so the partitions' rows read range by range are exactly the rows of the whole
file, with the same line (row) numbers."""

import io
import itertools
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pastools_jobs.datasets.cuts import line_cuts
from pastools_jobs.datasets.parquet_reader import row_group_cuts
from pastools_jobs.datasets.readers import CsvOptions, SourceFormat, read_batches
from pastools_jobs.datasets.reading import Position, ReadLimits, RowError, SourceUnusable

LIMITS = ReadLimits(record_bytes=1 << 20, batch_bytes=1 << 20, batch_rows=7)

CSV = "id,note\n" + "".join(
    f'k{n},"a ""quoted"" note,\nover two lines"\n' if n % 3 == 0 else f"k{n},plain {n}\n"
    for n in range(40)
)
JSONL = "".join(json.dumps({"id": f"k{n}", "note": "x" * (n % 5)}) + "\n" for n in range(40))


def rows(
    content: bytes, source_format: SourceFormat, start: int = 0, end: int | None = None
) -> tuple[list[tuple[int, str, str]], list[RowError]]:
    """The rows of the byte range (a Parquet file's rows after `start` up to `end`)."""
    by_rows = source_format == "parquet"
    reading = read_batches(
        io.BytesIO(content),
        source_format,
        Position(0, start, start) if by_rows else Position(start),
        "id",
        CsvOptions(),
        LIMITS,
        end_offset=None if by_rows else end,
        end_row=end if by_rows else None,
    )
    found: list[tuple[int, str, str]] = []
    errors: list[RowError] = []
    for batch in reading.batches:
        found += batch.rows
        errors += batch.errors
    return found, errors


@pytest.mark.parametrize(("source_format", "text"), [("csv", CSV), ("jsonl", JSONL)])
@pytest.mark.parametrize("every", [1, 13, 100, 400])
def test_ranges_between_the_cuts_read_the_whole_files_rows(
    source_format: SourceFormat, text: str, every: int
) -> None:
    content = text.encode()
    quote = b'"' if source_format == "csv" else None
    cuts = line_cuts(io.BytesIO(content), len(content), every, quote)

    assert cuts, "nothing was cut"
    assert all(content[cut - 1 : cut] == b"\n" for cut in cuts)
    bounds = [0, *cuts, len(content)]
    parts = [rows(content, source_format, a, b) for a, b in itertools.pairwise(bounds)]
    assert [row for found, _ in parts for row in found] == rows(content, source_format)[0]
    assert not any(errors for _, errors in parts)


def test_no_cut_inside_a_quoted_field() -> None:
    content = b'id,note\nk1,"one\ntwo\nthree"\nk2,x\n'

    cuts = line_cuts(io.BytesIO(content), len(content), 1, b'"')

    assert cuts == [8, 27]  # after the header and after k1's record, never inside it


def test_a_stray_quote_shows_as_a_range_read_past_its_cut() -> None:
    """A quote inside an unquoted field (not RFC 4180) throws the count off: the cut lands
    inside the next record, and the range before it ends past the cut, which is what the
    partition checks to fail the import instead of reading a half record."""
    content = b'id,note\nk1,5" pipe\nk2,"multi\nline"\nk3,x\n'

    cuts = line_cuts(io.BytesIO(content), len(content), 1, b'"')
    inside = content.index(b'line"')

    assert inside in cuts
    reading = read_batches(
        io.BytesIO(content), "csv", Position(), "id", CsvOptions(), LIMITS, end_offset=inside
    )
    assert [batch.end.offset for batch in reading.batches][-1] > inside


def parquet(rows: int, row_group_size: int) -> bytes:
    table = pa.table(
        {"id": [f"k{n}" for n in range(rows)], "note": ["x" * (n % 5) for n in range(rows)]}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return buffer.getvalue()


@pytest.mark.parametrize("every", [1, 150, 400])
def test_row_groups_between_the_cuts_read_the_whole_parquet_files_rows(every: int) -> None:
    content = parquet(40, 7)
    sizes = [pq.read_metadata(io.BytesIO(content)).row_group(i).total_byte_size for i in range(6)]

    bounds = row_group_cuts(io.BytesIO(content), every, "id")

    assert len(bounds) > 2, "nothing was cut"
    assert bounds[0] == 0 and bounds[-1] == 40
    assert all(cut % 7 == 0 for cut in bounds[1:-1]), "a cut inside a row group"
    partitions = list(itertools.pairwise(bounds))
    for a, b in partitions[:-1]:
        assert sum(sizes[a // 7 : -(-b // 7)]) >= every, "a partition smaller than asked"
    parts = [rows(content, "parquet", a, b) for a, b in partitions]
    assert [row for found, _ in parts for row in found] == rows(content, "parquet")[0]
    assert [row[0] for found, _ in parts for row in found] == list(range(1, 41))


def test_a_parquet_partition_resumed_at_its_checkpoint_reads_the_rest_of_its_rows() -> None:
    """A retried partition of rows 8…21 whose checkpoint says 10 rows were read: it reads
    11…21 (in the row group of rows 8…14, from row 11), and ends where its partition does."""
    content = parquet(40, 7)
    reading = read_batches(
        io.BytesIO(content), "parquet", Position(0, 10, 10), "id", CsvOptions(), LIMITS, end_row=21
    )
    read = list(reading.batches)

    assert [row[0] for batch in read for row in batch.rows] == list(range(11, 22))
    assert read[-1].end == Position(0, 21, 21)


@pytest.mark.parametrize(
    ("content", "key_column"),
    [
        (parquet(40, 40), "id"),  # one row group
        (parquet(40, 7), "name"),  # no key column: the one activity says so
        (b"PAR1 not really", "id"),  # unreadable: the one activity says so
    ],
)
def test_a_parquet_file_is_not_cut_when_it_cannot_be(content: bytes, key_column: str) -> None:
    assert row_group_cuts(io.BytesIO(content), 1, key_column) == []


def test_a_parquet_file_with_less_data_than_a_partition_is_not_cut() -> None:
    content = parquet(40, 7)
    footer = pq.read_metadata(io.BytesIO(content))
    data = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))

    assert row_group_cuts(io.BytesIO(content), data, "id") == []
    assert len(row_group_cuts(io.BytesIO(content), data // 2, "id")) == 3


def test_a_parquet_file_claiming_more_than_a_hundred_times_its_size_is_cut_no_finer() -> None:
    """Ten row groups of one long string repeated, stored plain (40 KiB a row group
    uncompressed), zstd-compressed into a few hundred bytes each: one partition a row
    group as sized, but no more cuts than a hundred times the file's bytes make."""
    table = pa.table({"id": [f"k{n}" for n in range(100)], "blob": ["x" * 4096] * 100})
    buffer = io.BytesIO()
    pq.write_table(
        table,
        buffer,
        row_group_size=10,
        use_dictionary=False,
        compression="zstd",
        write_statistics=False,
    )
    content = buffer.getvalue()
    group = pq.read_metadata(io.BytesIO(content)).row_group(0).total_byte_size

    bounds = row_group_cuts(io.BytesIO(content), group, "id")

    assert len(bounds) - 2 == len(content) * 100 // group < 9
    assert bounds[-1] == 100


def test_a_footer_understating_the_files_rows_loses_none_of_them_read_whole() -> None:
    """Two row groups of 3 rows whose footer says the file holds 3: read as one activity
    (no end row), every row its row groups hold is read, as before partitions existed."""
    content = parquet(6, 3)
    length = int.from_bytes(content[-8:-4], "little")
    footer = content[-8 - length : -8]
    # The file's num_rows (field 3, zigzag 12) right before its row groups (field 4).
    claimed = b"\x16\x0c\x19\x2c"
    assert footer.count(claimed) == 1
    lying = content[: -8 - length] + footer.replace(claimed, b"\x16\x06\x19\x2c") + content[-8:]
    assert pq.read_metadata(io.BytesIO(lying)).num_rows == 3

    assert [row[0] for row in rows(lying, "parquet")[0]] == [1, 2, 3, 4, 5, 6]


def claiming(content: bytes, group: int, claimed: int) -> bytes:
    """A file of 3-row groups whose footer says row group `group` (from 0) holds
    `claimed` rows: its num_rows (field 3, zigzag 6) rewritten, the data left as it is."""
    length = int.from_bytes(content[-8:-4], "little")
    footer = content[-8 - length : -8]
    at = [i for i in range(len(footer)) if footer.startswith(b"\x16\x06\x26", i)][group]
    zigzag = (claimed << 1) ^ (claimed >> 63)
    assert zigzag < 0x80, "one varint byte"
    footer = footer[:at] + bytes([0x16, zigzag, 0x26]) + footer[at + 3 :]
    return content[: -8 - length] + footer + content[-8:]


@pytest.mark.parametrize("claimed", [-1, 5])
def test_a_footer_miscounting_a_row_groups_rows_fails_its_partitions_as_the_whole(
    claimed: int,
) -> None:
    """The middle one of three row groups of 3 rows claims `claimed`: read whole, the file
    is refused; read in partitions (cut by the footer's counts), it is refused too, rather
    than rows skipped unread or read twice under other numbers."""
    content = claiming(parquet(9, 3), 1, claimed)
    assert pq.read_metadata(io.BytesIO(content)).row_group(1).num_rows == claimed
    bounds = row_group_cuts(io.BytesIO(content), 1, "id")

    with pytest.raises(SourceUnusable):
        rows(content, "parquet")
    with pytest.raises(SourceUnusable):
        for a, b in itertools.pairwise(bounds or [0, 9]):
            rows(content, "parquet", a, b)
