"""Null markers, column types, inference and sniffing of imports: pure logic, and the
CSV reader putting them together (in part of a file too)."""

import codecs
import io
import json
from typing import Any

import pytest

from pastools_jobs.datasets.coercion import NotCoercible, from_json, from_text, infer_type
from pastools_jobs.datasets.readers import CsvOptions, Reading, Shaping, read_batches
from pastools_jobs.datasets.reading import Position, ReadLimits
from pastools_jobs.datasets.shaping import encode_document
from pastools_jobs.datasets.sniffing import sniff_dialect, sniff_encoding

LIMITS = ReadLimits(1 << 20, 1 << 24, 1000)
NA = frozenset({"", "NA"})
DETECT = CsvOptions(None, None, None)


def read(content: bytes, shaping: Shaping, **kwargs: Any) -> Reading:
    options = kwargs.pop("options", DETECT)
    start = kwargs.pop("start", Position())
    return read_batches(
        io.BytesIO(content),
        "csv",
        start,
        kwargs.pop("key", None),
        options,
        LIMITS,
        shaping,
        **kwargs,
    )


def rows(reading: Reading) -> list[tuple[int, dict[str, Any]]]:
    return [(line, json.loads(doc)) for b in reading.batches for line, _, doc in b.rows]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("42", "integer", 42),
        (" -7 ", "integer", -7),
        ("3.0", "integer", 3),
        ("2.5", "number", 2.5),
        ("1e3", "number", 1000.0),
        ("Yes", "boolean", True),
        ("0", "boolean", False),
        ("2013-01-01", "date", "2013-01-01"),
        ("2013-01-01 05:17:00", "timestamp", "2013-01-01T05:17:00"),
        ('{"a": [1]}', "json", {"a": [1]}),
        ("007", "string", "007"),
    ],
)
def test_text_is_coerced_to_its_declared_type(text: str, kind: Any, value: Any) -> None:
    assert from_text(text, kind) == value


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("2.5", "integer"),
        ("1_000", "integer"),
        ("1e5000", "integer"),
        ("nan", "number"),
        ("inf", "number"),
        ("maybe", "boolean"),
        ("2013-13-01", "date"),
        ("2013-01-01", "timestamp"),
        ("{oops", "json"),
    ],
)
def test_text_that_is_not_of_the_type_is_refused(text: str, kind: Any) -> None:
    with pytest.raises(NotCoercible):
        from_text(text, kind)


def test_json_values_are_coerced_where_nothing_is_lost() -> None:
    assert from_json("12", "integer") == 12
    assert from_json(12.0, "integer") == 12
    assert from_json(None, "integer") is None
    assert from_json(5, "string") == "5"
    with pytest.raises(NotCoercible):
        from_json(True, "integer")
    with pytest.raises(NotCoercible):
        from_json([1], "number")


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["1", "NA", "-4", ""], "integer"),
        (["1", "2.5", "NA"], "number"),
        (["true", "FALSE", "NA"], "boolean"),
        (["0", "1"], "integer"),
        (["1.0", "2.0"], "number"),
        (["1e3", "7"], "number"),
        (["2013-01-01", "NA"], "date"),
        (["2013-01-01T05:00:00", "2013-01-02 06:00"], "timestamp"),
        (["01234", "12345"], "string"),
        (["1", "x"], "string"),
        (["NA", ""], "string"),
    ],
)
def test_inference_takes_the_narrowest_type_every_present_value_fits(
    values: list[str], kind: str
) -> None:
    assert infer_type(values, NA) == kind


def test_sniffing_finds_the_delimiter_quote_and_encoding() -> None:
    assert sniff_dialect("a;b;c\n1;2;3\n4;5;6\n", None, None).delimiter == ";"
    assert sniff_dialect("a\tb\n1\t2\n", None, None).delimiter == "\t"
    assert sniff_dialect("a|b\n'x|y'|2\n", None, None) == sniff_dialect("a|b\n'x|y'|2\n", "|", "'")
    assert sniff_dialect("a,b\n1,2\n", None, None).quotechar == '"'
    assert sniff_dialect("one column\nx\n", None, None).delimiter == ","
    assert sniff_encoding("id,name\n1,Zoë\n".encode()) == "utf-8"
    assert sniff_encoding("id,name\n1,Zoë\n".encode("cp1252")) == "cp1252"
    assert sniff_encoding(codecs.BOM_UTF16_LE + "a".encode("utf-16-le")) == "utf-16"
    assert sniff_encoding(codecs.BOM_UTF8 + b"a,b\n") == "utf-8-sig"
    cut = "é".encode()[:1]
    assert sniff_encoding(b"a,b\n1,caf" + cut) == "utf-8"  # a character cut by the head


FLIGHTS = (
    b"year;carrier;dep_delay;cancelled\n"
    b"2013;UA;2;false\n"
    b"2013;AA;NA;true\n"
    b"2013;B6;;false\n"
    b"2013;B6;2.5;false\n"
    b"2013;B6;late;false\n"
)


def test_na_markers_become_null_and_inferred_columns_take_their_type() -> None:
    reading = read(FLIGHTS, Shaping(("", "NA"), {}, True, 3))
    found = rows(reading)
    plans = reading.description.columns
    assert {name: (p.type, p.decided) for name, p in plans.items()} == {
        "year": ("integer", "inferred"),
        "carrier": ("string", "inferred"),
        "dep_delay": ("integer", "inferred"),
        "cancelled": ("boolean", "inferred"),
    }
    assert reading.description.delimiter == ";"
    assert found[0] == (2, {"year": 2013, "carrier": "UA", "dep_delay": 2, "cancelled": False})
    assert found[1][1]["dep_delay"] is None
    assert found[2][1]["dep_delay"] is None
    # past the sample: a decimal widens, a word is kept as text (a misfit), no row is lost
    assert [value["dep_delay"] for _, value in found[3:]] == [2.5, "late"]


def test_a_misfit_of_an_inferred_type_is_counted_not_rejected() -> None:
    batches = list(read(FLIGHTS, Shaping(("", "NA"), {}, True, 3)).batches)
    assert [error for b in batches for error in b.errors] == []
    assert [m for b in batches for m in b.misfits] == [("dep_delay", 6)]


def test_a_value_its_declared_type_refuses_is_a_bad_row_naming_line_column_and_value() -> None:
    reading = read(FLIGHTS, Shaping(("", "NA"), {"dep_delay": "number"}, True, 3))
    batches = list(reading.batches)
    errors = [error for b in batches for error in b.errors]
    assert [(e.line, e.column, e.value) for e in errors] == [(6, "dep_delay", "late")]
    assert "not a number" in errors[0].reason
    assert reading.description.columns["dep_delay"].decided == "declared"
    assert len([row for b in batches for row in b.rows]) == 4


def test_without_markers_and_inference_values_stay_text() -> None:
    found = rows(read(FLIGHTS, Shaping((), {}, False)))
    assert found[1][1] == {"year": "2013", "carrier": "AA", "dep_delay": "NA", "cancelled": "true"}
    assert found[2][1]["dep_delay"] == ""


def test_declared_types_must_name_columns_of_the_header() -> None:
    from pastools_jobs.datasets.reading import SourceUnusable

    with pytest.raises(SourceUnusable, match="no column of the header"):
        read(FLIGHTS, Shaping((), {"delay": "integer"}, False))


def test_declared_types_coerce_json_lines_too() -> None:
    content = b'{"id": "1", "n": "12"}\n{"id": "2", "n": "x"}\n{"id": "3"}\n'
    reading = read_batches(
        io.BytesIO(content),
        "jsonl",
        Position(),
        "id",
        DETECT,
        LIMITS,
        Shaping((), {"n": "integer"}),
    )
    batches = list(reading.batches)
    documents = [json.loads(doc) for b in batches for _, _, doc in b.rows]
    assert documents == [{"id": "1", "n": 12}, {"id": "3"}]
    assert [(e.line, e.column) for b in batches for e in b.errors] == [(2, "n")]


def test_a_byte_range_is_read_alone_with_absolute_line_numbers() -> None:
    body = b"".join(b"%d,v%d\n" % (i, i) for i in range(1, 11))
    content = b"id,v\n" + body
    start = content.index(b"4,v4")
    end = content.index(b"7,v7") + 1  # inside line 8: that line is the last
    reading = read(
        content, Shaping(), key="id", options=CsvOptions(), start=Position(start), end_offset=end
    )
    found = rows(reading)
    assert [(line, value["id"]) for line, value in found] == [
        (5, "4"),
        (6, "5"),
        (7, "6"),
        (8, "7"),
    ]
    jsonl = b"".join(b'{"id": %d}\n' % i for i in range(1, 6))
    begin = jsonl.index(b'{"id": 3}')
    part = read_batches(
        io.BytesIO(jsonl), "jsonl", Position(begin), "id", DETECT, LIMITS, end_offset=begin + 1
    )
    assert [line for b in part.batches for line, _, _ in b.rows] == [3]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"a": NaN}', "[1e400]"])
def test_json_text_without_a_json_value_is_refused(text: str) -> None:
    """Python's json reads NaN and Infinity; JSON has neither and PostgreSQL's jsonb
    refuses them: such a value is a bad row, never a record."""
    with pytest.raises(NotCoercible):
        from_text(text, "json")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e30", 10**30), ("9007199254740993.0", 9007199254740993), ("-1.5e3", -1500)],
)
def test_an_integer_written_as_a_decimal_keeps_every_digit(text: str, value: int) -> None:
    assert from_text(text, "integer") == value


def test_json_lines_with_nan_or_infinity_are_bad_rows() -> None:
    content = b'{"id": "1", "n": NaN}\n{"id": "2", "n": -Infinity}\n{"id": "3", "n": 1}\n'
    reading = read_batches(io.BytesIO(content), "jsonl", Position(), "id", DETECT, LIMITS)
    batches = list(reading.batches)
    documents = [json.loads(doc) for b in batches for _, _, doc in b.rows]
    assert documents == [{"id": "3", "n": 1}]
    assert [e.line for b in batches for e in b.errors] == [1, 2]


@pytest.mark.parametrize(
    "document",
    [
        {"id": 1, "name": 'Zoë "Z" \\ \n\t', "n": None, "ok": True, "x": 2.5},
        {"nested": [{"a": [1, {}]}, []], "big": 10**40, "e": "\u2028😀"},
        {},
    ],
)
def test_documents_are_encoded_as_the_json_module_writes_them_compactly(
    document: dict[str, Any],
) -> None:
    expected = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    assert encode_document(document) == expected


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_a_number_json_has_not_is_refused_by_the_encoder(number: float) -> None:
    with pytest.raises(ValueError):
        encode_document({"x": number})


@pytest.mark.parametrize("text", ["٣٤", "1" * 4299])
def test_integers_of_any_decimal_digits_are_read_as_python_reads_them(text: str) -> None:
    assert from_text(text, "integer") == int(text)
