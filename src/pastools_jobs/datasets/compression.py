"""Compressed exports as concatenated gzip members or zstd frames.

A member (frame) is closed at every checkpoint, so the bytes a checkpoint covers are a
complete compressed stream on their own: a retry cut back to that size starts a new
member, and the file stays one valid stream (gzip and zstd readers read concatenated
members and frames as one) whose content is that of an uninterrupted run.
"""

import zlib
from typing import Literal, Protocol

import zstandard

Compression = Literal["none", "gzip", "zstd"]

SUFFIXES: dict[Compression, str] = {"none": "", "gzip": ".gz", "zstd": ".zst"}

_GZIP_WINDOW = 31
"""zlib's window bits for a gzip header and trailer (16 + 15)."""
_GZIP_LEVEL = 6
_ZSTD_LEVEL = 3


class _Stream(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


class MemberWriter:
    """Compresses a byte stream in members: `end_member` closes the current one."""

    def __init__(self, compression: Compression) -> None:
        self.compression = compression
        self._stream: _Stream | None = None

    def compress(self, data: bytes) -> bytes:
        if self.compression == "none":
            return data
        if self._stream is None:
            self._stream = self._new_stream()
        return self._stream.compress(data)

    def end_member(self) -> bytes:
        """The rest of the open member, closed; nothing when none is open."""
        if self._stream is None:
            return b""
        stream, self._stream = self._stream, None
        if self.compression == "gzip":
            return stream.flush()
        return stream.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)

    def finish(self) -> bytes:
        """The end of the stream: at least one member, so even an empty export is a valid
        compressed file."""
        return self.compress(b"") + self.end_member()

    def _new_stream(self) -> _Stream:
        if self.compression == "gzip":
            return zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WINDOW)
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compressobj()
