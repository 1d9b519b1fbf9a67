"""Guessing a CSV file's encoding, delimiter and quote character from its first bytes,
for the options an import leaves unset. The guesses are reported in the job's result,
so that a user who sees one wrong can pin it."""

import codecs
import csv
import io
from dataclasses import dataclass

DELIMITERS = (",", ";", "\t", "|")
QUOTECHARS = ('"', "'")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
"""UTF-32's little-endian BOM starts with UTF-16's: it is looked for first."""
_SAMPLE_LINES = 50


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quotechar: str


def sniff_encoding(head: bytes) -> str:
    """A BOM names its encoding; otherwise UTF-8 if the head decodes as UTF-8 (a
    character cut at the end of the head does not count), else Windows-1252, the
    commonest single-byte encoding of spreadsheet exports."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def sniff_dialect(text: str, delimiter: str | None, quotechar: str | None) -> Dialect:
    """The delimiter that splits the sample's lines into the same number (more than
    one) of fields most often, then the most fields; the quote character seen at the
    start of a field. A given option is kept as given."""
    lines = text.splitlines()[:_SAMPLE_LINES]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample cut a line short
    quote = quotechar or _sniff_quotechar(lines)
    if delimiter is not None:
        return Dialect(delimiter, quote)
    best = max(DELIMITERS, key=lambda candidate: _score(lines, candidate, quote))
    return Dialect(best if _score(lines, best, quote) > (0, 0) else ",", quote)


def _score(lines: list[str], delimiter: str, quotechar: str) -> tuple[int, int]:
    """(lines agreeing with the header's field count, that count); (0, 0) if the header
    has a single field."""
    try:
        rows = list(
            csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, quotechar=quotechar)
        )
    except csv.Error:
        return (0, 0)
    if not rows or len(rows[0]) < 2:
        return (0, 0)
    width = len(rows[0])
    return (sum(1 for row in rows if len(row) == width), width)


def _sniff_quotechar(lines: list[str]) -> str:
    """A single quote only when fields start with one and none starts with a double
    quote: apostrophes inside text are common, quoting with them is not."""
    starts = {quote: 0 for quote in QUOTECHARS}
    for line in lines:
        for delimiter in DELIMITERS:
            for quote in QUOTECHARS:
                starts[quote] += line.startswith(quote) + line.count(delimiter + quote)
    return "'" if starts["'"] > 0 and starts['"'] == 0 else '"'
