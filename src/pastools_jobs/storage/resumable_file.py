"""A job's file on local disk, in the job's own directory.

A file is written under a `.part` name and renamed when complete, so a cancelled or
crashed job never leaves a truncated file that looks finished. A retried attempt
reopens the part file (or the finished file, if the attempt before died after renaming
it), cuts it back to the size in its checkpoint and goes on: the finished file is
byte-identical to that of an uninterrupted run. A checkpoint is a size already synced
to disk, so the bytes it covers survive any crash.
"""

import fcntl
import os
import time
from pathlib import Path
from typing import BinaryIO

from pastools_jobs.storage.base import ARTIFACT_NAME, ArtifactBusy

PART = ".part"


class ResumableFile:
    """A `.part` file that resumes at a checkpointed size and is renamed when done.

    One attempt at a time holds it (an exclusive lock, from open until after the rename),
    and a checkpoint is only ever a size already on disk: so a retry continues exactly
    after its checkpoint, or, when those bytes are gone, starts over from nothing.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        resume_at: int | None,
        *,
        checkpoint_interval: float = 0.0,
    ) -> None:
        if not ARTIFACT_NAME.match(name):
            raise ValueError(f"not an artifact name: {name!r}")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.final = directory / name
        self.part = directory / f"{name}{PART}"
        self._interval = checkpoint_interval
        self._checkpointed_at = time.monotonic()
        self.stream = _open_locked(self.part)
        try:
            self.resumed = self._resume(resume_at)
        except BaseException:
            self.stream.close()
            raise

    def _resume(self, resume_at: int | None) -> bool:
        """Cut the part back to `resume_at`, or empty it if it holds less: never pad it."""
        if resume_at is None:
            return self._start_over()
        if _size(self.stream) < resume_at and self._finished_holds(resume_at):
            self._take_back_finished()
        if _size(self.stream) < resume_at:
            return self._start_over()
        self.stream.truncate(resume_at)
        self.stream.seek(resume_at)
        return True

    def _start_over(self) -> bool:
        self.stream.truncate(0)
        self.final.unlink(missing_ok=True)
        return False

    def _finished_holds(self, size: int) -> bool:
        return self.final.is_file() and self.final.stat().st_size >= size

    def _take_back_finished(self) -> None:
        """The finished file is the part of an attempt that died after renaming it, before
        Temporal recorded its end; its checkpoint covers a prefix of it. Naming it the part
        again lets the retry go on from there: at its very end, keep it as it is. It is
        locked before it is renamed: an attempt still inside `finish()` holds it, and the
        retry must then wait with the finished file left in place."""
        taken = _open_locked(self.final)
        os.replace(self.final, self.part)
        self.stream.close()
        self.stream = taken

    def checkpoint_due(self) -> bool:
        """Whether a checkpoint interval has passed: syncing at that pace keeps throughput."""
        return time.monotonic() - self._checkpointed_at >= self._interval

    def checkpoint(self) -> int:
        """Make what is written durable and return its size, the only size a later attempt
        may resume at: a crash can lose bytes that were written but not synced."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self._checkpointed_at = time.monotonic()
        return self.stream.tell()

    def finish(self) -> int:
        """Rename the durable part to its final name, still holding it, so that no other
        attempt can cut it meanwhile; then make the rename itself durable."""
        size = self.checkpoint()
        self.part.replace(self.final)
        _fsync_directory(self.directory)
        self.stream.close()
        return size

    def close(self) -> None:
        if not self.stream.closed:
            self.stream.close()


def _open_locked(path: Path) -> BinaryIO:
    """Open without truncating, then lock: a file another attempt holds is left untouched."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ArtifactBusy(f"{path.name} is still being written by another attempt") from None
    return os.fdopen(fd, "r+b")


def _size(stream: BinaryIO) -> int:
    return os.fstat(stream.fileno()).st_size


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
