"""Physical lines of a text source in its encoding, never more than a limit of bytes each.

UTF-8 and the other ASCII-compatible encodings end a line at the byte b"\\n". The others
end it where the codec writes "\\n": EBCDIC codecs at b"\\x25", UTF-16 and UTF-32 at the
code unit of "\\n", at an offset that is a multiple of the unit (the byte 0x0A also occurs
inside other characters' units, and a byte search would leave half a unit on the next
line). Those lines are found in the raw bytes, unit-aligned, before they are decoded.
Lines start at the offsets a checkpoint names, so a resumed reader decodes from exactly
where it stopped.
"""

import codecs
from dataclasses import dataclass
from typing import BinaryIO

from pastools_jobs.datasets.reading import RECORD_LIMIT_SETTING, SourceUnusable, describe_size

_WIDE_BOMS = {"utf-16": codecs.BOM_UTF16_LE, "utf-32": codecs.BOM_UTF32_LE}
"""The little-endian BOM of each: any other start is read big-endian."""
_BLOCK = 1 << 16


@dataclass(frozen=True)
class TextEncoding:
    """The codec a file's lines are decoded with, its byte order explicit."""

    codec: str
    newline: bytes


def text_encoding(stream: BinaryIO, encoding: str) -> TextEncoding:
    """`utf-16` and `utf-32` name no byte order: the file's BOM gives it (big-endian
    without one, as RFC 2781 says), so that each line can be decoded on its own. Raises
    LookupError for an unknown encoding."""
    codec = codecs.lookup(encoding).name
    if codec in _WIDE_BOMS:
        little_endian_bom = _WIDE_BOMS[codec]
        stream.seek(0)
        head = stream.read(len(little_endian_bom))
        stream.seek(0)
        codec = f"{codec}-le" if head == little_endian_bom else f"{codec}-be"
    return TextEncoding(codec, _newline(codec))


def _newline(codec: str) -> bytes:
    """How the codec writes "\\n" inside a text: after the first, which may carry a
    signature (utf-8-sig's BOM)."""
    one, two = "\n".encode(codec), "\n\n".encode(codec)
    return two[len(one) :]


def _too_long(line: int, limit: int) -> SourceUnusable:
    return SourceUnusable(
        f"line {line} is longer than the {describe_size(limit)} limit ({RECORD_LIMIT_SETTING})"
    )


class LineReader:
    """Raw lines from `offset` on, each with its newline; b"" at the end of the file."""

    def __init__(self, stream: BinaryIO, encoding: TextEncoding, offset: int, limit: int) -> None:
        self._stream = stream
        self._newline = encoding.newline
        self._narrow = encoding.newline == b"\n"
        self._limit = limit
        self._buffer = b""
        self._start = 0
        stream.seek(offset)

    def read(self, line: int) -> bytes:
        """The next line, whose number is `line`; refused when longer than the limit.
        Called once per line: the common case (a narrow encoding, a short line) is one
        readline and one comparison."""
        raw = self._stream.readline(self._limit + 1) if self._narrow else self._read_wide()
        if len(raw) > self._limit and (
            len(raw) - len(self._newline) * raw.endswith(self._newline) > self._limit
        ):
            raise _too_long(line, self._limit)
        return raw

    def _read_wide(self) -> bytes:
        unit = len(self._newline)
        searched = self._start
        while (end := self._find_newline(searched)) is None:
            if len(self._buffer) - self._start > self._limit + unit:
                return self._take(len(self._buffer))  # too long: read no further
            searched = self._start + (len(self._buffer) - self._start) // unit * unit
            chunk = self._stream.read(_BLOCK)
            if not chunk:
                return self._take(len(self._buffer))
            self._buffer = self._buffer[self._start :] + chunk
            searched -= self._start
            self._start = 0
        return self._take(end)

    def _find_newline(self, searched: int) -> int | None:
        """The end of the first newline unit at or after `searched`, a unit-aligned offset."""
        unit = len(self._newline)
        found = self._buffer.find(self._newline, searched)
        while found != -1 and (found - self._start) % unit:
            found = self._buffer.find(self._newline, found + 1)
        return None if found == -1 else found + unit

    def _take(self, end: int) -> bytes:
        line = self._buffer[self._start : end]
        self._start = end
        return line


def count_lines(stream: BinaryIO, encoding: TextEncoding, offset: int) -> int:
    """Lines that end before `offset` (a line's start): the number of the line before
    the one starting there, for a reader given a part of the file."""
    lines = 0
    if encoding.newline == b"\n":  # counted a block at a time
        stream.seek(0)
        left = offset
        while left > 0 and (block := stream.read(min(_BLOCK * 16, left))):
            lines += block.count(b"\n")
            left -= len(block)
    else:
        reader = LineReader(stream, encoding, 0, offset)
        done = 0
        while done < offset and (raw := reader.read(lines + 1)):
            done += len(raw)
            lines += 1
    stream.seek(offset)
    return lines
