"""The export's bytes: what CSV and JSON Lines look like for awkward values, the SQLite
shortcut that reads a batch's stored text joined into one array, compressed members that
concatenate into one valid stream, and the parameters an export refuses."""

import gzip
import io
import json
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pastools_jobs.datasets.compression import MemberWriter
from pastools_jobs.datasets.export_encoding import RecordEncoder
from workflows.params import ExportParams

RECORDS: list[tuple[str, Any]] = [
    ("a,1", {"s": 'say "hi", ok\nbye', "n": 1.5, "b": True, "z": None, "o": {"x": [1, "é"]}}),
    ("b", {"s": "", "n": 1e-05, "big": 12345678901234567890}),
    ("c", [1, 2]),
    ("d", {"s": "日本\t\\"}),
]


def test_csv_writes_the_key_then_each_field_as_text_or_json() -> None:
    encoder = RecordEncoder("csv", ["s", "n", "b", "o", "missing"], chosen=False)

    written = (encoder.header() + encoder.encode(RECORDS)).decode()

    assert written == (
        "key,s,n,b,o,missing\n"
        '"a,1","say ""hi"", ok\nbye",1.5,true,"{""x"": [1, ""é""]}",\n'
        "b,,1e-05,,,\n"
        "c,,,,,\n"
        "d,日本\t\\,,,,\n"
    )


def test_json_lines_hold_the_document_or_exactly_the_chosen_fields() -> None:
    whole = RecordEncoder("jsonl", [], chosen=False).encode(RECORDS[1:3]).decode()
    chosen = RecordEncoder("jsonl", ["n", "s"], chosen=True).encode(RECORDS[1:3]).decode()

    assert whole == (
        '{"key": "b", "data": {"s": "", "n": 1e-05, "big": 12345678901234567890}}\n'
        '{"key": "c", "data": [1, 2]}\n'
    )
    assert chosen == (
        '{"key": "b", "data": {"n": 1e-05, "s": ""}}\n'
        '{"key": "c", "data": {"n": null, "s": null}}\n'
    )


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_stored_text_encodes_as_the_decoded_documents_do(export_format: str) -> None:
    encoder = RecordEncoder(export_format, ["s", "n", "b", "o", "big"], chosen=False)  # type: ignore[arg-type]
    stored = [json.dumps(doc, separators=(",", ":")) for _, doc in RECORDS]
    keys = [key for key, _ in RECORDS]

    assert encoder.encode_array([*keys, "e"], joined([*stored, "3"])) == encoder.encode(
        [*RECORDS, ("e", 3)]
    )


FLAT: list[tuple[str, Any]] = [
    ("a", {"s": 'say "hi", ok\r\nbye', "n": 1e-05, "big": 12345678901234567890}),
    ("b", {"z": None, "n": -0.0, "s": "", "extra": "日本"}),
    ("c,d", {}),
]


PLAIN: list[tuple[str, Any]] = [
    ("a", {"s": "x y", "n": 1e-05, "big": 12345678901234567890, "z": None}),
    ("b", {"z": "None", "n": -0.0, "s": "日本", "extra": 1}),
    ("c", {}),
]


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(FLAT, id="flat objects"),
        pytest.param(PLAIN, id="plain values, no cell quoted"),
        pytest.param([*PLAIN, ("e", {"s": "x, y"})], id="a comma in a value"),
        pytest.param([*PLAIN, ('e,"f"', {"s": "x"})], id="a key to quote"),
        pytest.param([*PLAIN, ("e", {"s": "x\ny"})], id="a newline in a value"),
        pytest.param([*FLAT, ("e", {"s": "{"})], id="a brace in a string"),
        pytest.param([("e", '"{"'), ("f", {"s": "x"})], id="a string document"),
        pytest.param([*FLAT, ("e", {"s": ["x"]})], id="a nested value"),
    ],
)
def test_a_batch_of_stored_text_encodes_as_its_decoded_documents_do(
    batch: list[tuple[str, Any]],
) -> None:
    encoder = RecordEncoder("csv", ["s", "n", "big", "z", "missing"], chosen=False)
    stored = [json.dumps(doc, ensure_ascii=False) for _, doc in batch]
    keys = [key for key, _ in batch]

    assert encoder.encode_array(keys, joined(stored)) == encoder.encode(
        [(key, json.loads(text)) for key, text in zip(keys, stored, strict=True)]
    )


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(['{"s":"x","n":1e400}', '{"s":"y","n":-1E999}'], id="no cell quoted"),
        pytest.param(['{"s":"x, y","n":1e400}', '{"n":-1e999}'], id="a cell quoted"),
    ],
)
def test_a_number_beyond_a_float_reads_as_the_decoded_documents_do(stored: list[str]) -> None:
    """A JSON Lines import without declared types keeps each line as written, so a
    number too large for a float is stored as it is and decodes to infinity."""
    encoder = RecordEncoder("csv", ["s", "n"], chosen=False)
    keys = ["a", "b"]

    assert encoder.encode_array(keys, joined(stored)) == encoder.encode(
        [(key, json.loads(text)) for key, text in zip(keys, stored, strict=True)]
    )


_AWKWARD_TEXT = st.text(st.sampled_from([*',"\r\n \t\\{}[]x1é\x00\u2028-.e+']), max_size=5)
_NUMBER_TEXT = st.sampled_from(
    ["1e400", "-1E999", "-0", "-0.0", "1.0", "1e-05", "12345678901234567890"]
)
_STORED_VALUE = (
    st.none().map(json.dumps)
    | _AWKWARD_TEXT.map(json.dumps)
    | st.integers().map(json.dumps)
    | st.floats(allow_nan=False, allow_infinity=False).map(json.dumps)
    | _NUMBER_TEXT
)
_NAMES = st.sampled_from(["a", "b", "c,d", "", " e"])


@st.composite
def _stored_documents(draw: st.DrawFn) -> str:
    """An object document's text as an import stores it: compact, or kept as written."""
    members = draw(st.dictionaries(_NAMES, _STORED_VALUE, max_size=4))
    colon, comma = draw(st.sampled_from([(":", ","), (": ", ", ")]))
    return "{" + comma.join(f"{json.dumps(n)}{colon}{v}" for n, v in members.items()) + "}"


@settings(max_examples=150, deadline=None)
@given(
    fields=st.lists(_NAMES, min_size=1, max_size=3, unique=True),
    batch=st.lists(st.tuples(_AWKWARD_TEXT, _stored_documents()), min_size=1, max_size=4),
)
def test_any_batch_of_plain_objects_encodes_as_its_decoded_documents_do(
    fields: list[str], batch: list[tuple[str, str]]
) -> None:
    encoder = RecordEncoder("csv", fields, chosen=False)
    keys = [key for key, _ in batch]
    stored = [text for _, text in batch]

    assert encoder.encode_array(keys, joined(stored)) == encoder.encode(
        [(key, json.loads(text)) for key, text in batch]
    )


def joined(documents: list[str]) -> str:
    """A batch's documents as SQLite joins them."""
    return "[" + ",".join(documents) + "]"


def decompress(compression: str, data: bytes) -> bytes:
    if compression == "gzip":
        return gzip.decompress(data)
    stream = io.BytesIO(data)
    return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True).read()


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_members_closed_at_checkpoints_make_one_stream_even_when_resumed(
    compression: str,
) -> None:
    chunks = [b"key,n\n", b"a,1\n" * 500, b"b,2\n" * 500, b"c,3\n"]
    whole = MemberWriter(compression)  # type: ignore[arg-type]
    written = b"".join(whole.compress(chunk) for chunk in chunks[:2]) + whole.end_member()
    checkpoint = len(written)
    written += whole.compress(chunks[2]) + whole.compress(b"lost in a crash")

    retry = MemberWriter(compression)  # type: ignore[arg-type]
    resumed = written[:checkpoint] + retry.compress(chunks[2]) + retry.compress(chunks[3])
    resumed += retry.finish()

    assert decompress(compression, resumed) == b"".join(chunks)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_an_empty_compressed_export_is_a_valid_file(compression: str) -> None:
    assert decompress(compression, MemberWriter(compression).finish()) == b""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"format": "csv", "columns": ["a", "b", "a"]}, "column 'a' is named twice"),
        ({"format": "csv", "row_group_rows": 5000}, "Parquet exports only"),
        ({"format": "csv", "columns": []}, "at least 1 item"),
        ({"format": "csv", "columns": [""]}, "at least 1 character"),
        ({"format": "csv", "compression": "brotli"}, "'none', 'gzip' or 'zstd'"),
    ],
)
def test_inconsistent_export_parameters_are_refused(params: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ExportParams.model_validate(params)
    assert says in str(refused.value)
