"""Receiving an import file over HTTP: multipart, streamed to disk, size-limited.

The body is parsed as it arrives (FastAPI would spool the whole of it before our code
ran), bytes are counted while streaming, and the file is renamed into the import
directory only when complete, so a refused or broken upload leaves nothing behind.
"""

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from pastools_jobs.domain import InvalidJobInput, PayloadTooLarge

UPLOADS = "uploads"
FIELD = "file"


@dataclass(frozen=True)
class StoredUpload:
    source: str
    filename: str
    bytes: int


def _safe_name(filename: str) -> str:
    base = Path(filename.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[-100:]
    return cleaned or "upload"


class _FilePart:
    """Multipart callbacks that write the `file` field to disk as it arrives."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.header_name = b""
        self.headers: dict[bytes, bytes] = {}
        self.stream: BinaryIO | None = None
        self.part: Path | None = None
        self.filename: str | None = None
        self.size = 0
        self.writing = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self.header_name.lower()
        self.headers[key] = self.headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self.header_name = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode()
        filename = options.get(b"filename")
        self.headers = {}
        self.writing = name == FIELD and filename is not None and self.stream is None
        if self.writing:
            assert filename is not None
            self.filename = filename.decode("utf-8", "replace")
            self.part = self.directory / f".{uuid.uuid4().hex}.part"
            self.stream = self.part.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing and self.stream is not None:
            self.stream.write(data[start:end])
            self.size += end - start

    def on_part_end(self) -> None:
        self.writing = False

    def discard(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self.part is not None:
            self.part.unlink(missing_ok=True)


async def store_upload(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    import_dir: Path,
    max_bytes: int,
) -> StoredUpload:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidJobInput(f"Send the file as multipart/form-data, in a field named '{FIELD}'.")
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    directory = import_dir / UPLOADS
    directory.mkdir(parents=True, exist_ok=True)
    part = _FilePart(directory)
    parser = MultipartParser(boundary, callbacks=_callbacks(part))  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(max_bytes)
            parser.write(chunk)
        parser.finalize()
        if part.stream is None or part.part is None or part.filename is None:
            raise InvalidJobInput(f"The form has no file in a field named '{FIELD}'.")
        part.stream.close()
        name = f"{uuid.uuid4().hex[:12]}-{_safe_name(part.filename)}"
        part.part.replace(directory / name)
        return StoredUpload(f"{UPLOADS}/{name}", part.filename, part.size)
    except BaseException as error:
        part.discard()
        if isinstance(error, MultipartParseError):
            raise InvalidJobInput(f"The multipart body is malformed: {error}") from None
        raise


def _callbacks(part: _FilePart) -> dict[str, object]:
    return {
        name: getattr(part, name)
        for name in (
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
