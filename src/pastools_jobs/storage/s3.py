"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph, Cloudflare R2 …).

Keys: `<prefix>/imports/<project>/<source>` and `<prefix>/artifacts/<job>/<name>`.
An object appears only when complete: an upload or an artifact is a multipart upload
until its last part, and S3 publishes it whole at CompleteMultipartUpload. An artifact's
checkpoint is the bytes in its uploaded parts, so a retried attempt finds the upload,
keeps the parts its checkpoint covers and uploads the rest; completing with the ETags of
the parts it holds fences off a stalled attempt that wrote over one of them since. Imports read by
ranged GETs, so a resumed import starts where it left off without reading what is
before. Endpoint, region and credentials come from boto3's usual environment
(`AWS_ENDPOINT_URL_S3`, `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
…).
"""

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pastools_jobs.domain import (
    SourceNotFound,
    StorageMisconfigured,
    StorageUnavailable,
    UnsafeSource,
)
from pastools_jobs.storage.base import (
    ARTIFACT_NAME,
    READ_CHUNK_BYTES,
    Artifact,
    ArtifactBusy,
    artifact,
    job_folder,
    project_folder,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_UNREACHABLE = (
    BotoConnectionError,  # refused, reset, timed out, TLS, proxy
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)
_OVERLOADED = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "RequestTimeTooSkewed",
    "NoSuchBucket",
    "403",
}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_SUPERSEDED = {"InvalidPart", "NoSuchUpload"}
"""What completing an upload answers when another attempt changed or finished it."""
MAX_COPY_BYTES = 5 << 30
"""The most one UploadPartCopy may copy."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(error: ClientError) -> bool:
    return _code(error) in _MISSING


class S3Storage:
    def __init__(self, bucket: str, prefix: str, part_bytes: int) -> None:
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        )
        try:
            self.client: S3Client = boto3.client("s3", config=config)
        except (BotoCoreError, ValueError) as error:
            raise StorageMisconfigured(f"the object store cannot be used: {error}") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_bytes = part_bytes
        self.location = f"s3://{bucket}/{self.key('imports')}"

    @classmethod
    def from_url(cls, url: str, part_bytes: int) -> "S3Storage":
        parsed = urlparse(url)
        return cls(parsed.netloc, parsed.path, part_bytes)

    @contextmanager
    def reaching(self) -> Iterator[None]:
        """Network failures and an overloaded store are outages that pass (a 503, a
        retried activity); anything else is the caller's to interpret."""
        try:
            yield
        except _UNREACHABLE as error:
            raise StorageUnavailable(self._unreachable(str(error))) from None
        except ClientError as error:
            if _status(error) >= 500 or _code(error) in _OVERLOADED:
                raise StorageUnavailable(self._unreachable(_code(error))) from None
            if _code(error) in _REFUSED:
                raise StorageMisconfigured(
                    f"the object store refused access to bucket '{self.bucket}' "
                    f"({_code(error)}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
                    "PASTOOLS_STORAGE_URL"
                ) from None
            raise

    def _unreachable(self, reason: str) -> str:
        return f"The object store of bucket '{self.bucket}' cannot be reached ({reason})."

    def key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def check(self) -> None:
        try:
            with self.reaching():
                self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise StorageMisconfigured(
                "no credentials for the object store: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or another source boto3 reads)"
            ) from None
        except BotoCoreError as error:
            raise StorageMisconfigured(f"the object store cannot be used: {error}") from None
        except ClientError as error:
            if _is_missing(error):
                reason = f"the object store has no bucket '{self.bucket}'"
            else:
                reason = f"the object store answered {_code(error)} for bucket '{self.bucket}'"
            raise StorageMisconfigured(f"{reason} (PASTOOLS_STORAGE_URL)") from None

    def source_key(self, project_id: str, source: str) -> str:
        """The project's own key for `source`: a relative name, which cannot climb out."""
        parts = source.split("/")
        if not source or "\\" in source or "\x00" in source or len(source) > 900:
            raise UnsafeSource(f"Import source '{source}' is not a name of a file to import.")
        if ".." in parts:
            raise UnsafeSource(f"Import source '{source}' must not contain '..'.")
        if source.startswith("/"):
            raise UnsafeSource(f"Import source '{source}' leads outside the import directory.")
        if "" in parts or "." in parts:
            raise UnsafeSource(
                f"Import source '{source}' must be a relative name such as 'uploads/a.csv'."
            )
        return self.key("imports", project_folder(project_id), source)

    def size_of(self, key: str) -> int | None:
        try:
            with self.reaching():
                return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as error:
            if _is_missing(error):
                return None
            raise

    def check_source(self, project_id: str, source: str) -> None:
        if self.size_of(self.source_key(project_id, source)) is None:
            raise SourceNotFound(source)

    def open_source(self, project_id: str, source: str) -> BinaryIO:
        key = self.source_key(project_id, source)
        size = self.size_of(key)
        if size is None:
            raise SourceNotFound(source)
        reader = _ObjectReader(self, key, size)
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=READ_CHUNK_BYTES))

    def upload(self, project_id: str, source: str) -> "S3Upload":
        return S3Upload(self, self.source_key(project_id, source))

    def artifact_key(self, job_id: str, name: str = "") -> str:
        return self.key("artifacts", job_folder(job_id), name)

    def list_artifacts(self, job_id: str) -> list[Artifact]:
        prefix = self.artifact_key(job_id) + "/"
        found: list[Artifact] = []
        with self.reaching():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].removeprefix(prefix)
                    if ARTIFACT_NAME.match(name):
                        found.append(artifact(name, item["Size"]))
        return sorted(found, key=lambda listed: listed.name)

    def read_artifact(self, job_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        try:
            with self.reaching():
                got = self.client.get_object(
                    Bucket=self.bucket, Key=self.artifact_key(job_id, name)
                )
        except ClientError as error:
            if _is_missing(error):
                raise FileNotFoundError(name) from None
            raise
        return got["ContentLength"], _chunks(self, got["Body"])

    def delete_artifact(self, job_id: str, name: str) -> None:
        if not ARTIFACT_NAME.match(name):
            raise ValueError(f"not an artifact name: {name!r}")
        with self.reaching():
            self.client.delete_object(Bucket=self.bucket, Key=self.artifact_key(job_id, name))

    def artifact_writer(
        self, job_id: str, name: str, resume_at: int | None, *, checkpoint_interval: float
    ) -> "S3ArtifactWriter":
        """Checkpoints only between parts: bytes in the buffer are not durable yet."""
        if not ARTIFACT_NAME.match(name):
            raise ValueError(f"not an artifact name: {name!r}")
        with self.reaching():
            return S3ArtifactWriter(
                self, self.artifact_key(job_id, name), resume_at, checkpoint_interval
            )


def _chunks(storage: S3Storage, body: Any) -> Iterator[bytes]:
    try:
        with storage.reaching():
            yield from body.iter_chunks(READ_CHUNK_BYTES)
    finally:
        body.close()


class _ObjectReader(io.RawIOBase):
    """An object as a seekable file: one streaming GET from the position on, opened again
    with a Range header after a seek (a resumed import, a Parquet footer)."""

    def __init__(self, storage: S3Storage, key: str, size: int) -> None:
        self._storage = storage
        self._key = key
        self._size = size
        self._position = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        try:
            data = self._read(len(buffer))
        except StorageUnavailable:
            # A connection held open through a long import may be dropped: open a new
            # one from here, once; a second failure is an outage (a retried activity).
            self._drop_body()
            data = self._read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _read(self, size: int) -> bytes:
        with self._storage.reaching():
            if self._body is None:
                self._body = self._storage.client.get_object(
                    Bucket=self._storage.bucket,
                    Key=self._key,
                    Range=f"bytes={self._position}-",
                )["Body"]
            return bytes(self._body.read(size))

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class _Parts:
    """Bytes on their way to an object: whole parts of `part_bytes` or more go up as they
    fill; the rest only at the last, possibly short, part."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self.storage = storage
        self.key = key
        self.upload_id: str | None = None
        self.uploaded: list[CompletedPartTypeDef] = []
        self.buffer = bytearray()
        self.durable = 0
        self.ended_short = False
        self.copy_first = 0

    @property
    def client(self) -> "S3Client":
        return self.storage.client

    @property
    def content_type(self) -> str:
        return artifact(self.key.rsplit("/", 1)[-1], 0).content_type

    def add(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.storage.part_bytes:
            self.send()

    def start(self) -> None:
        """Begin the multipart upload; one that goes on from a finished object begins with
        that object's first `copy_first` bytes, copied by the store itself."""
        if self.upload_id is not None:
            return
        bucket = self.storage.bucket
        with self.storage.reaching():
            self.upload_id = self.client.create_multipart_upload(
                Bucket=bucket, Key=self.key, ContentType=self.content_type
            )["UploadId"]
            for start in range(0, self.copy_first, MAX_COPY_BYTES):
                end = min(start + MAX_COPY_BYTES, self.copy_first) - 1
                copied = self.client.upload_part_copy(
                    Bucket=bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    PartNumber=len(self.uploaded) + 1,
                    CopySource={"Bucket": bucket, "Key": self.key},
                    CopySourceRange=f"bytes={start}-{end}",
                )
                etag = copied["CopyPartResult"]["ETag"]
                self.uploaded.append({"PartNumber": len(self.uploaded) + 1, "ETag": etag})

    def send(self) -> None:
        """Upload the buffer as the next part. Only the last part may be short: S3 refuses
        to complete an object with a short part anywhere else."""
        if self.ended_short:
            raise RuntimeError(f"{self.key}: a short part was already uploaded as the last")
        self.start()
        assert self.upload_id is not None
        number = len(self.uploaded) + 1
        with self.storage.reaching():
            etag = self.client.upload_part(
                Bucket=self.storage.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=bytes(self.buffer),
            )["ETag"]
        self.uploaded.append({"PartNumber": number, "ETag": etag})
        self.durable += len(self.buffer)
        self.ended_short = len(self.buffer) < self.storage.part_bytes
        self.buffer.clear()

    def complete(self) -> None:
        """Publish the parts this attempt uploaded or kept, by the ETags it holds: a part
        another attempt wrote over since fails the completion (retried) rather than
        ending up in the file."""
        assert self.upload_id is not None
        try:
            with self.storage.reaching():
                self.client.complete_multipart_upload(
                    Bucket=self.storage.bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": self.uploaded},
                )
        except ClientError as error:
            if _code(error) in _SUPERSEDED:
                raise ArtifactBusy(
                    f"{self.key.rsplit('/', 1)[-1]} was changed by another attempt"
                ) from None
            raise

    def put_whole(self) -> None:
        """A file smaller than one part, in one PUT."""
        with self.storage.reaching():
            self.client.put_object(
                Bucket=self.storage.bucket,
                Key=self.key,
                Body=bytes(self.buffer),
                ContentType=self.content_type,
            )

    def abort(self) -> None:
        if self.upload_id is not None:
            with self.storage.reaching():
                self.client.abort_multipart_upload(
                    Bucket=self.storage.bucket, Key=self.key, UploadId=self.upload_id
                )
            self.upload_id = None


class S3Upload:
    """An upload streamed in parts; a file smaller than one part is a single PUT."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self._parts = _Parts(storage, key)
        self.size = 0

    def write(self, data: bytes) -> None:
        self._parts.add(data)
        self.size += len(data)

    def commit(self) -> None:
        parts = self._parts
        if parts.upload_id is None:
            parts.put_whole()
            return
        if parts.buffer:
            parts.send()
        parts.complete()

    def discard(self) -> None:
        self._parts.abort()


class _Appender(io.RawIOBase):
    """The writer's `stream`, for code (and pyarrow) that writes to a file."""

    def __init__(self, parts: _Parts) -> None:
        self._parts = parts

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.add(bytes(data))
        return len(data)

    def tell(self) -> int:
        return self._parts.durable + len(self._parts.buffer)


class S3ArtifactWriter:
    """A job's object, written as a multipart upload that a retry resumes."""

    def __init__(
        self, storage: S3Storage, key: str, resume_at: int | None, checkpoint_interval: float
    ) -> None:
        self._storage = storage
        self._interval = checkpoint_interval
        self._checkpointed_at = time.monotonic()
        self._parts = _Parts(storage, key)
        self._finished_size: int | None = None
        self._reported = 0
        self.stream = cast(BinaryIO, _Appender(self._parts))
        self.resumed = self._resume(resume_at)
        self._reported = self._parts.durable

    @property
    def _client(self) -> "S3Client":
        return self._storage.client

    def _resume(self, resume_at: int | None) -> bool:
        if resume_at is None:
            return self._start_over()
        pending = self._pending_uploads()
        if resume_at > 0 and pending and self._keep_parts(pending[-1], resume_at):
            self._abort(pending[:-1])
            return True
        self._finished_size = self._storage.size_of(self._parts.key)
        if self._finished_size is not None and self._finished_size >= resume_at:
            # The attempt before died after completing the object: it stays visible while
            # this one writes it again from its checkpoint on, copied server-side.
            self._abort(pending)
            self._parts.copy_first = self._parts.durable = resume_at
            return True
        return self._start_over()

    def _pending_uploads(self) -> list[str]:
        """This key's unfinished uploads, oldest first."""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._storage.bucket, Prefix=self._parts.key
        )
        uploads = [
            upload
            for page in pages
            for upload in page.get("Uploads", [])
            if upload["Key"] == self._parts.key
        ]
        uploads.sort(key=lambda upload: upload["Initiated"])
        return [upload["UploadId"] for upload in uploads]

    def _keep_parts(self, upload_id: str, resume_at: int) -> bool:
        """Keep the parts that make up exactly `resume_at` bytes; later ones are written
        again (and left out of the completed object)."""
        kept: list[CompletedPartTypeDef] = []
        size = 0
        short = False
        pages = self._client.get_paginator("list_parts").paginate(
            Bucket=self._storage.bucket, Key=self._parts.key, UploadId=upload_id
        )
        for part in (part for page in pages for part in page.get("Parts", [])):
            if size == resume_at or part["PartNumber"] != len(kept) + 1:
                break
            kept.append({"PartNumber": part["PartNumber"], "ETag": part["ETag"]})
            size += part["Size"]
            short = part["Size"] < self._storage.part_bytes
        if size != resume_at:
            return False
        self._parts.upload_id = upload_id
        self._parts.uploaded = kept
        self._parts.durable = size
        self._parts.ended_short = short
        return True

    def _abort(self, upload_ids: list[str]) -> None:
        for upload_id in upload_ids:
            self._client.abort_multipart_upload(
                Bucket=self._storage.bucket, Key=self._parts.key, UploadId=upload_id
            )

    def _start_over(self) -> bool:
        self._abort(self._pending_uploads())
        self._client.delete_object(Bucket=self._storage.bucket, Key=self._parts.key)
        return False

    def checkpoint_due(self) -> bool:
        """Everything written is in uploaded parts (nothing waits in the buffer), and a
        part went up since the last checkpoint or the interval has passed: a report that
        stays empty still checkpoints its position."""
        if self._parts.buffer:
            return False
        return (
            self._parts.durable > self._reported
            or time.monotonic() - self._checkpointed_at >= self._interval
        )

    def checkpoint(self) -> int:
        """Anything still buffered goes up as a (short) part: call it between parts only
        when nothing more will be written."""
        if self._parts.buffer:
            self._parts.send()
        self._reported = self._parts.durable
        self._checkpointed_at = time.monotonic()
        return self._parts.durable

    def finish(self) -> int:
        size = self.checkpoint()
        if self._parts.upload_id is None and size == self._finished_size:
            return size  # the finished object is this file already
        if size == 0:  # S3 completes no upload of no part: an empty file is one PUT
            self._parts.abort()
            self._parts.put_whole()
            return 0
        self._parts.start()
        self._parts.complete()
        return size

    def close(self) -> None:
        """The unfinished upload stays: it is what a retry resumes."""
