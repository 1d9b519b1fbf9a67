"""The one interface to where the platform's files live, whichever backend holds them.

Import sources (uploads among them) are kept per project, so a job only ever reads its
own project's files; artifacts per job. Both backends keep the same promises: a file
appears only once complete, a resumed artifact is byte-identical to one written in one
go, and every read is streamed.
"""

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from pastools_jobs.domain import PROJECT_ID_PATTERN

ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_PROJECT = re.compile(PROJECT_ID_PATTERN)
UPLOADS = "uploads"
"""Where, among a project's import sources, uploaded files go."""
READ_CHUNK_BYTES = 1 << 20

mimetypes.add_type("application/x-ndjson", ".jsonl")
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")
mimetypes.add_type("application/zstd", ".zst")


@dataclass(frozen=True)
class Artifact:
    name: str
    bytes: int
    content_type: str


def artifact(name: str, size: int) -> Artifact:
    """A compressed file (export.csv.gz) is served as what it is, not as its content."""
    content_type, encoding = mimetypes.guess_type(name)
    if encoding is not None:
        content_type = f"application/{encoding}"
    return Artifact(name, size, content_type or "application/octet-stream")


def job_folder(job_id: str) -> str:
    """A directory (or key prefix) of the job's own, for its artifacts.

    An id that is a plain name is used as it is; any other (`..`, `a/b`, ids started from
    the CLI with odd characters) by its hash, so no two jobs ever share one.
    """
    return job_id if ARTIFACT_NAME.match(job_id) else _hashed(job_id)


def project_folder(project_id: str) -> str:
    """The directory (or key prefix) of a project's import sources: its id as it is, so
    operators know where to put files, unless it predates the id rule."""
    return project_id if _PROJECT.match(project_id) else _hashed(project_id)


def _hashed(identifier: str) -> str:
    return f"~{hashlib.sha256(identifier.encode()).hexdigest()}"


class ArtifactWriter(Protocol):
    """A job's file being written: resumable at a checkpoint, visible only when finished."""

    resumed: bool
    """The retry goes on after `resume_at`; False when it starts over from nothing."""
    stream: BinaryIO

    def checkpoint_due(self) -> bool:
        """Whether `checkpoint()` is worth calling now (the backend knows its pace)."""
        ...

    def checkpoint(self) -> int:
        """Make everything written durable and return its size: the only size a retry may
        resume at."""
        ...

    def finish(self) -> int:
        """Make the file visible under its name, complete; returns its size."""
        ...

    def close(self) -> None: ...


class UploadSink(Protocol):
    """A file arriving in pieces; nothing of it is visible until `commit`."""

    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None:
        """Publish what was written under its name, whole and at once."""
        ...

    def discard(self) -> None: ...


class Storage(Protocol):
    """Uploads, import sources and artifacts; every method may block (call it in a
    thread) and raises StorageUnavailable while the backend cannot be reached."""

    location: str
    """Where import sources go, one folder per project: for an operator to read."""

    def check(self) -> None:
        """Raises StorageMisconfigured (credentials, bucket) in one line, at start-up."""
        ...

    def check_source(self, project_id: str, source: str) -> None:
        """Raises UnsafeSource or SourceNotFound, in words the submitter can act on."""

        ...

    def open_source(self, project_id: str, source: str) -> BinaryIO:
        """The source, readable and seekable (seeks to the end give its size)."""
        ...

    def upload(self, project_id: str, source: str) -> UploadSink:
        """A new import source of the project's, visible once committed."""
        ...

    def list_artifacts(self, job_id: str) -> list[Artifact]:
        """Finished files only, in name order."""
        ...

    def read_artifact(self, job_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        """The size of a listed artifact, as opened, and its content in chunks;
        FileNotFoundError when there is none."""
        ...

    def artifact_writer(
        self, job_id: str, name: str, resume_at: int | None, *, checkpoint_interval: float
    ) -> ArtifactWriter:
        """Raises ArtifactBusy while an earlier attempt still holds the file."""
        ...

    def delete_artifact(self, job_id: str, name: str) -> None:
        """Remove a finished artifact of the job's (a partition's part once merged); one
        that is gone already is no error."""
        ...


def find_artifact(storage: Storage, job_id: str, name: str) -> Artifact | None:
    """Only a finished file listed as the job's own: never a path or key a user built."""
    return next((a for a in storage.list_artifacts(job_id) if a.name == name), None)


class ArtifactBusy(Exception):
    """Another attempt still writes the file: one that stalled past its heartbeat timeout.

    Retryable: by the retry, the stalled attempt has learnt it was given up and let go."""
