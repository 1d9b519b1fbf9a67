"""Files on a local (or shared) disk: import sources under `import_dir/<project>/`,
artifacts under `artifacts_dir/<job>/`."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pastools_jobs.domain import SourceNotFound, StorageMisconfigured, UnsafeSource
from pastools_jobs.paths import UnsafePath, open_under, resolve_under
from pastools_jobs.storage.base import (
    ARTIFACT_NAME,
    READ_CHUNK_BYTES,
    Artifact,
    artifact,
    job_folder,
    project_folder,
)
from pastools_jobs.storage.resumable_file import PART, ResumableFile


class LocalStorage:
    def __init__(self, import_dir: Path, artifacts_dir: Path) -> None:
        self.import_dir = import_dir
        self.artifacts_dir = artifacts_dir
        self.location = str(import_dir)

    def check(self) -> None:
        """Artifacts inside the import directory would be a project's import files."""
        if self.artifacts_dir.resolve().is_relative_to(self.import_dir.resolve()):
            raise StorageMisconfigured(
                f"the artifacts directory {self.artifacts_dir} is inside the import directory "
                f"{self.import_dir}: set PASTOOLS_IMPORT_DIR apart from PASTOOLS_DATA_DIR"
            )
        self.import_dir.mkdir(parents=True, exist_ok=True)

    def project_dir(self, project_id: str) -> Path:
        return self.import_dir / project_folder(project_id)

    def check_source(self, project_id: str, source: str) -> None:
        try:
            found = resolve_under(self.project_dir(project_id), source).is_file()
        except UnsafePath as error:
            raise UnsafeSource(f"Import source {error}") from None
        except OSError:
            found = False
        if not found:
            raise SourceNotFound(source)

    def open_source(self, project_id: str, source: str) -> BinaryIO:
        """Checked again at open: a file swapped for a symlink out is refused then."""
        try:
            return open_under(self.project_dir(project_id), source)
        except UnsafePath as error:
            raise UnsafeSource(f"Import source {error}") from None
        except OSError:
            raise SourceNotFound(source) from None

    def upload(self, project_id: str, source: str) -> "LocalUpload":
        try:
            return LocalUpload(self.project_dir(project_id), source)
        except UnsafePath as error:
            raise UnsafeSource(f"Import source {error}") from None

    def job_dir(self, job_id: str) -> Path:
        return self.artifacts_dir / job_folder(job_id)

    def list_artifacts(self, job_id: str) -> list[Artifact]:
        directory = self.job_dir(job_id)
        if not directory.is_dir():
            return []
        return [
            artifact(path.name, path.stat().st_size)
            for path in sorted(directory.iterdir())
            if path.is_file()
            and not path.is_symlink()
            and not path.name.endswith(PART)
            and ARTIFACT_NAME.match(path.name)
        ]

    def read_artifact(self, job_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        stream = open_under(self.job_dir(job_id), name)
        return os.fstat(stream.fileno()).st_size, _chunks(stream)

    def artifact_writer(
        self, job_id: str, name: str, resume_at: int | None, *, checkpoint_interval: float
    ) -> ResumableFile:
        return ResumableFile(
            self.job_dir(job_id), name, resume_at, checkpoint_interval=checkpoint_interval
        )

    def delete_artifact(self, job_id: str, name: str) -> None:
        if not ARTIFACT_NAME.match(name):
            raise ValueError(f"not an artifact name: {name!r}")
        (self.job_dir(job_id) / name).unlink(missing_ok=True)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            yield chunk


class LocalUpload:
    """A hidden `.part` file in the project's directory, renamed into place when complete."""

    def __init__(self, project_dir: Path, source: str) -> None:
        project_dir.mkdir(parents=True, exist_ok=True)
        self.target = resolve_under(project_dir, source)
        self.part = project_dir / f".{uuid.uuid4().hex}{PART}"
        self.stream = self.part.open("wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.size += len(data)

    def commit(self) -> None:
        self.stream.close()
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.part.replace(self.target)

    def discard(self) -> None:
        self.stream.close()
        self.part.unlink(missing_ok=True)
