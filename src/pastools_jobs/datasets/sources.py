"""Import sources: files named by users, confined to the import directory.

A submission's source is checked when the job is submitted (400 at once rather than a
job that fails later), and again when the import opens it: a file replaced after
submission by a symlink out of the import directory fails the job then.
"""

from pathlib import Path
from typing import BinaryIO

from pastools_jobs.domain import SourceNotFound, UnsafeSource
from pastools_jobs.paths import UnsafePath, open_under, resolve_under


def check_source(import_dir: Path, source: str) -> None:
    """Raises UnsafeSource or SourceNotFound, in words the submitter can act on."""
    try:
        path = resolve_under(import_dir, source)
        found = path.is_file()
    except UnsafePath as error:
        raise UnsafeSource(f"Import source {error}") from None
    except OSError:
        found = False
    if not found:
        raise SourceNotFound(source)


def open_source(import_dir: Path, source: str) -> BinaryIO:
    try:
        return open_under(import_dir, source)
    except UnsafePath as error:
        raise UnsafeSource(f"Import source {error}") from None
    except OSError:
        raise SourceNotFound(source) from None
