"""Files a job produces (exports, reports), one directory per job.

A file is written under a `.part` name and renamed when complete, so a cancelled or
crashed job never leaves a truncated file that looks finished. A retried attempt
reopens the part file, cuts it back to the size in its checkpoint and goes on: the
finished file is byte-identical to that of an uninterrupted run.
"""

import hashlib
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PART = ".part"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")

mimetypes.add_type("application/x-ndjson", ".jsonl")
mimetypes.add_type("application/vnd.apache.parquet", ".parquet")


@dataclass(frozen=True)
class Artifact:
    name: str
    bytes: int
    content_type: str
    path: Path


def job_artifacts_dir(artifacts_root: Path, job_id: str) -> Path:
    """A directory of the job's own, always inside the root.

    An id that is a plain name is used as it is; any other (`..`, `a/b`, ids started from
    the CLI with odd characters) by its hash, so no two jobs ever share a directory.
    """
    if _NAME.match(job_id):
        return artifacts_root / job_id
    return artifacts_root / f"~{hashlib.sha256(job_id.encode()).hexdigest()}"


def list_artifacts(directory: Path) -> list[Artifact]:
    if not directory.is_dir():
        return []
    return [
        _artifact(path)
        for path in sorted(directory.iterdir())
        if path.is_file()
        and not path.is_symlink()
        and not path.name.endswith(PART)
        and _NAME.match(path.name)
    ]


def find_artifact(directory: Path, name: str) -> Artifact | None:
    """Only a finished file listed in the job's own directory: never a path a user built."""
    return next((a for a in list_artifacts(directory) if a.name == name), None)


def _artifact(path: Path) -> Artifact:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Artifact(path.name, path.stat().st_size, content_type, path)


class ResumableFile:
    """A `.part` file that resumes at a checkpointed size and is renamed when done."""

    def __init__(self, directory: Path, name: str, resume_at: int | None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"not an artifact name: {name!r}")
        directory.mkdir(parents=True, exist_ok=True)
        self.final = directory / name
        self.part = directory / f"{name}{PART}"
        self.stream: BinaryIO
        if resume_at is not None and self.part.exists():
            self.stream = self.part.open("r+b")
            self.stream.truncate(resume_at)
            self.stream.seek(resume_at)
        else:
            self.final.unlink(missing_ok=True)
            self.stream = self.part.open("wb")

    @property
    def resumed(self) -> bool:
        return self.stream.tell() > 0

    def checkpoint(self) -> int:
        """Flush and return the size a later attempt may resume at."""
        self.stream.flush()
        return self.stream.tell()

    def finish(self) -> int:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        size = self.stream.tell()
        self.stream.close()
        self.part.replace(self.final)
        return size

    def close(self) -> None:
        if not self.stream.closed:
            self.stream.close()
