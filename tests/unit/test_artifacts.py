"""A job's file across attempts: a retry continues exactly after its checkpoint or starts
over from nothing, keeps a file an attempt finished, and never shares it with another."""

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from activities.partitions import merged_before
from pastools_jobs.storage.base import ArtifactBusy
from pastools_jobs.storage.local import LocalStorage
from pastools_jobs.storage.resumable_file import ResumableFile

NAME = "p-export.csv"


def listed(directory: Path) -> list[str]:
    """The artifacts the API would list, `directory` being a job's own."""
    storage = LocalStorage(directory.parent / "imports", directory.parent)
    return [artifact.name for artifact in storage.list_artifacts(directory.name)]


def finished_content(directory: Path) -> bytes:
    return (directory / NAME).read_bytes()


def test_a_retry_after_the_rename_keeps_the_finished_file(tmp_path: Path) -> None:
    """The attempt died after `finish()`, before Temporal recorded its end."""
    first = ResumableFile(tmp_path, NAME, None)
    first.stream.write(b"key\na\nb\n")
    checkpoint = first.checkpoint()
    first.finish()

    retry = ResumableFile(tmp_path, NAME, checkpoint)
    assert retry.resumed
    assert retry.finish() == checkpoint

    assert finished_content(tmp_path) == b"key\na\nb\n"
    assert listed(tmp_path) == [NAME]


def test_a_retry_whose_checkpoint_lags_the_finished_file_goes_on_from_it(tmp_path: Path) -> None:
    first = ResumableFile(tmp_path, NAME, None)
    first.stream.write(b"key\na\n")
    checkpoint = first.checkpoint()
    first.stream.write(b"b\n")
    first.finish()

    retry = ResumableFile(tmp_path, NAME, checkpoint)
    assert retry.resumed
    retry.stream.write(b"b\n")
    retry.finish()

    assert finished_content(tmp_path) == b"key\na\nb\n"


def test_a_checkpoint_beyond_the_part_starts_over_without_padding(tmp_path: Path) -> None:
    """The bytes the checkpoint counted are gone: nothing of them may be made up."""
    first = ResumableFile(tmp_path, NAME, None)
    first.stream.write(b"key\na\n")
    first.close()  # died with only these bytes on disk

    retry = ResumableFile(tmp_path, NAME, 4096)
    assert not retry.resumed, "the caller must count its rows afresh"
    retry.stream.write(b"key\na\nb\n")
    retry.finish()

    assert finished_content(tmp_path) == b"key\na\nb\n"


def test_a_second_writer_is_refused_while_the_first_holds_the_part(tmp_path: Path) -> None:
    """An attempt stalled past its heartbeat timeout still writes: its retry must wait."""
    first = ResumableFile(tmp_path, NAME, None)
    first.stream.write(b"key\na\n")
    checkpoint = first.checkpoint()

    with pytest.raises(ArtifactBusy):
        ResumableFile(tmp_path, NAME, checkpoint)
    with pytest.raises(ArtifactBusy):
        ResumableFile(tmp_path, NAME, None)

    first.stream.write(b"b\n")
    first.finish()
    assert finished_content(tmp_path) == b"key\na\nb\n"
    retry = ResumableFile(tmp_path, NAME, None)  # once it is let go, a retry may start over
    retry.close()


def test_a_retry_meeting_a_rename_still_held_leaves_the_finished_file(tmp_path: Path) -> None:
    """The stalled attempt has renamed its part but not yet let it go: the retry waits,
    and the finished file stays listed under its name meanwhile."""
    first = ResumableFile(tmp_path, NAME, None)
    first.stream.write(b"key\na\n")
    checkpoint = first.checkpoint()
    first.part.replace(first.final)  # finish() up to the rename, the lock still held

    with pytest.raises(ArtifactBusy):
        ResumableFile(tmp_path, NAME, checkpoint)

    assert listed(tmp_path) == [NAME]
    first.close()
    retry = ResumableFile(tmp_path, NAME, checkpoint)
    assert retry.finish() == checkpoint
    assert finished_content(tmp_path) == b"key\na\n"


@pytest.fixture
def synced_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each regular file at the moment it is fsynced."""
    sizes: list[int] = []
    real_fsync: Callable[[int], None] = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode):
            sizes.append(status.st_size)

    monkeypatch.setattr(os, "fsync", fsync)
    return sizes


def test_a_checkpoint_never_exceeds_what_is_synced(tmp_path: Path, synced_sizes: list[int]) -> None:
    output = ResumableFile(tmp_path, NAME, None)
    for line in (b"key\n", b"a\n", b"b\n"):
        output.stream.write(line)
        checkpoint = output.checkpoint()
        assert synced_sizes and checkpoint <= synced_sizes[-1]
    output.close()


def test_a_merge_retried_after_removing_some_parts_removes_the_rest(tmp_path: Path) -> None:
    """The attempt that merged the parts died after removing the first: its retry keeps
    the merged file and leaves no part among the job's artifacts."""
    storage = LocalStorage(tmp_path / "imports", tmp_path)
    parts = ["report.part-0000.jsonl", "report.part-0001.jsonl"]
    for name, content in [(parts[1], b"b\n"), ("report.jsonl", b"a\nb\n")]:
        writer = storage.artifact_writer("job", name, None, checkpoint_interval=1)
        writer.stream.write(content)
        writer.finish()
        writer.close()

    assert merged_before(storage, "job", parts, "report.jsonl") == 4
    assert [artifact.name for artifact in storage.list_artifacts("job")] == ["report.jsonl"]


def test_a_merge_with_a_part_missing_and_nothing_merged_fails(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "imports", tmp_path)
    with pytest.raises(RuntimeError, match="part-0000"):
        merged_before(storage, "job", ["report.part-0000.jsonl"], "report.jsonl")
