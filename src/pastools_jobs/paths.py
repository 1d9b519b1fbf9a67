"""Confinement of user-named files to a fixed base directory."""

from pathlib import Path, PurePosixPath


class UnsafePath(ValueError):
    """A user-supplied path that would leave its base directory."""


def check_relative(name: str) -> str:
    """Reject, before touching the disk, names that are absolute or climb with `..`."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or "\\" in name:
        raise UnsafePath(f"'{name}' must be a relative path inside the import directory.")
    if ".." in path.parts:
        raise UnsafePath(f"'{name}' must not contain '..'.")
    return name


def resolve_under(base: Path, name: str) -> Path:
    """The real path of `name` under `base`; symlinks that lead outside are refused."""
    check_relative(name)
    root = base.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise UnsafePath(f"'{name}' leads outside the import directory.")
    return target
