"""Where a big import is cut: every cut is a record start, so the partitions' rows read
range by range are exactly the rows of the whole file, with the same line numbers."""

import io
import itertools
import json

import pytest

from pastools_jobs.datasets.cuts import line_cuts
from pastools_jobs.datasets.readers import CsvOptions, SourceFormat, read_batches
from pastools_jobs.datasets.reading import Position, ReadLimits, RowError

LIMITS = ReadLimits(record_bytes=1 << 20, batch_bytes=1 << 20, batch_rows=7)

CSV = "id,note\n" + "".join(
    f'k{n},"a ""quoted"" note,\nover two lines"\n' if n % 3 == 0 else f"k{n},plain {n}\n"
    for n in range(40)
)
JSONL = "".join(json.dumps({"id": f"k{n}", "note": "x" * (n % 5)}) + "\n" for n in range(40))


def rows(
    content: bytes, source_format: SourceFormat, start: int = 0, end: int | None = None
) -> tuple[list[tuple[int, str, str]], list[RowError]]:
    reading = read_batches(
        io.BytesIO(content),
        source_format,
        Position(start),
        "id",
        CsvOptions(),
        LIMITS,
        end_offset=end,
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
