"""Receiving an import file over HTTP: multipart, streamed to storage, size-limited.

The body is parsed as it arrives (FastAPI would spool the whole of it before our code
ran), in a worker thread since storage writes block, bytes are counted while streaming,
and the file is published among the project's sources only when complete, so a refused
or broken upload leaves nothing behind.
"""

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from pastools_jobs.domain import InvalidJobInput, PayloadTooLarge, StorageUnavailable
from pastools_jobs.storage.base import UPLOADS, Storage, UploadSink

FIELD = "file"
log = logging.getLogger(__name__)


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
    """Multipart callbacks that write the `file` field to storage as it arrives."""

    def __init__(self, storage: Storage, project_id: str) -> None:
        self.storage = storage
        self.project_id = project_id
        self.header_name = b""
        self.headers: dict[bytes, bytes] = {}
        self.sink: UploadSink | None = None
        self.source: str | None = None
        self.filename: str | None = None
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
        self.writing = name == FIELD and filename is not None and self.sink is None
        if self.writing:
            assert filename is not None
            self.filename = filename.decode("utf-8", "replace")
            self.source = f"{UPLOADS}/{uuid.uuid4().hex[:12]}-{_safe_name(self.filename)}"
            self.sink = self.storage.upload(self.project_id, self.source)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing and self.sink is not None:
            self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        self.writing = False

    def discard(self) -> None:
        if self.sink is not None:
            self.sink.discard()


async def store_upload(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    storage: Storage,
    project_id: str,
    max_bytes: int,
) -> StoredUpload:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidJobInput(f"Send the file as multipart/form-data, in a field named '{FIELD}'.")
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    part = _FilePart(storage, project_id)
    parser = MultipartParser(boundary, callbacks=_callbacks(part))  # type: ignore[arg-type]
    received = 0
    in_thread: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    in_thread.set_result(None)
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(max_bytes)
            in_thread = asyncio.ensure_future(asyncio.to_thread(parser.write, chunk))
            await asyncio.shield(in_thread)
        parser.finalize()
        if part.sink is None or part.source is None or part.filename is None:
            raise InvalidJobInput(f"The form has no file in a field named '{FIELD}'.")
        in_thread = asyncio.ensure_future(asyncio.to_thread(part.sink.commit))
        await asyncio.shield(in_thread)
        return StoredUpload(part.source, part.filename, part.sink.size)
    except BaseException as error:
        # Cancelled (the client went away), the write still runs in its thread: let it
        # end before discarding, or it could start what the discard would not see.
        await asyncio.shield(_discard_after(in_thread, part))
        if isinstance(error, MultipartParseError):
            raise InvalidJobInput(f"The multipart body is malformed: {error}") from None
        raise


async def _discard_after(in_thread: "asyncio.Future[object]", part: _FilePart) -> None:
    with contextlib.suppress(BaseException):
        await in_thread
    try:
        await asyncio.to_thread(part.discard)
    except StorageUnavailable as error:
        # The refusal stands; the store's lifecycle rule removes the unfinished upload.
        log.warning("could not discard a refused upload: %s", error)


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
