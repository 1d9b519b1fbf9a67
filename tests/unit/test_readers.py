"""The import readers on files in memory: wide encodings and resuming at a checkpoint."""

import codecs
import io
import json

from pastools_jobs.datasets.readers import CsvOptions, TextLimits, read_batches
from pastools_jobs.datasets.reading import Batch, Position

MiB = 1 << 20


def read_all(content: bytes, start: Position, encoding: str, batch_rows: int) -> list[Batch]:
    return list(
        read_batches(
            io.BytesIO(content),
            "csv",
            start,
            batch_rows,
            "id",
            CsvOptions(encoding=encoding),
            TextLimits(MiB),
        )
    )


def documents(batches: list[Batch]) -> list[dict[str, str]]:
    return [json.loads(document) for batch in batches for _, _, document in batch.rows]


def test_a_utf16_csv_resumes_at_the_byte_offset_of_its_checkpoint() -> None:
    header, rows = "id,name\n", [f"{i},ਗੁਰੂ {i} 😀\n" for i in range(1, 6)]
    content = codecs.BOM_UTF16_LE + (header + "".join(rows)).encode("utf-16-le")

    first = read_all(content, Position(), "utf-16", batch_rows=2)[0]
    checkpoint = first.end
    resumed = read_all(content, checkpoint, "utf-16", batch_rows=2)

    assert checkpoint == Position(
        len(codecs.BOM_UTF16_LE + (header + rows[0] + rows[1]).encode("utf-16-le")), 3, 2
    )
    assert [doc["id"] for doc in documents([first])] == ["1", "2"]
    assert documents(resumed) == [{"id": str(i), "name": f"ਗੁਰੂ {i} 😀"} for i in range(3, 6)]
    assert resumed[-1].end.offset == len(content)
