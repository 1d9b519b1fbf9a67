"""Confinement of user-named files to a fixed base directory."""

import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO


class UnsafePath(ValueError):
    """A user-supplied path that would leave its base directory."""


def resolve_under(base: Path, name: str) -> Path:
    """The real path of `name` under `base`.

    Refused: `..` anywhere (even when it would stay inside), absolute paths elsewhere,
    and symlinks whose target lies outside. An absolute path inside `base` is accepted.
    """
    if not name or "\\" in name or "\x00" in name:
        raise UnsafePath(f"'{name}' is not a path inside the import directory.")
    if ".." in PurePosixPath(name).parts:
        raise UnsafePath(f"'{name}' must not contain '..'.")
    root = base.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise UnsafePath(f"'{name}' leads outside the import directory.")
    return target


def open_under(base: Path, name: str) -> BinaryIO:
    """Open the regular file `name` under `base`, and check that what was opened is what
    was checked: a file swapped for a symlink (or its directory for one) between the
    check and the open is refused. Raises FileNotFoundError when there is no such file.
    """
    target = resolve_under(base, name)
    fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    stream = os.fdopen(fd, "rb")
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise FileNotFoundError(name)
        if not os.path.samestat(opened, resolve_under(base, name).stat()):
            raise UnsafePath(f"'{name}' changed while it was being opened.")
    except BaseException:
        stream.close()
        raise
    return stream
