"""The job state machine, cursors and path confinement: pure logic."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pastools_jobs.domain import (
    TERMINAL_STATUSES,
    InvalidJobInput,
    InvalidProjectId,
    JobStatus,
    advances,
    check_new_project_id,
)
from pastools_jobs.paths import UnsafePath, open_under, resolve_under
from pastools_jobs.repository import decode_cursor, encode_cursor
from pastools_jobs.storage.base import find_artifact, job_folder, project_folder
from pastools_jobs.storage.local import LocalStorage

ORDER = [JobStatus.QUEUED, JobStatus.RUNNING]


@given(st.lists(st.sampled_from(list(JobStatus)), max_size=20))
def test_applying_observations_in_any_order_only_moves_forward(observed: list[JobStatus]):
    status = JobStatus.QUEUED
    history = [status]
    for observation in observed:
        if advances(status, observation):
            status = observation
            history.append(status)
    terminal = [s for s in history if s in TERMINAL_STATUSES]
    assert len(terminal) <= 1, f"a finished attempt changed again: {history}"
    open_part = [s for s in history if s not in TERMINAL_STATUSES]
    assert open_part == sorted(open_part, key=ORDER.index), history
    if terminal:
        assert history[-1] == terminal[0]
        assert terminal[0] in observed


def test_a_terminal_observation_always_wins_over_an_open_row():
    for current in (JobStatus.QUEUED, JobStatus.RUNNING):
        for final in TERMINAL_STATUSES:
            assert advances(current, final)
            assert not advances(final, current)


@given(
    st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),
    st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=200),
)
def test_cursor_round_trips(created_at: datetime, job_id: str):
    """Any id a job can have: PostgreSQL's text holds no NUL, so no cursor carries one."""
    assert decode_cursor(encode_cursor(created_at, job_id)) == (created_at, job_id)


@pytest.mark.parametrize("cursor", ["", "garbage", "W10", "WyJ4IiwgMV0"])
def test_foreign_cursor_is_invalid_input(cursor: str):
    with pytest.raises(InvalidJobInput):
        decode_cursor(cursor)


@pytest.mark.parametrize(
    "name", ["../x.csv", "a/../../x", "a/../b.csv", "/etc/passwd", "", "a\\..\\b", "a\x00.csv"]
)
def test_names_that_leave_the_import_directory_are_refused(name: str, tmp_path: Path):
    with pytest.raises(UnsafePath):
        resolve_under(tmp_path, name)


def test_an_absolute_path_inside_the_import_directory_is_accepted(tmp_path: Path):
    (tmp_path / "ok.csv").write_text("y\n")
    assert resolve_under(tmp_path, str(tmp_path / "ok.csv")) == (tmp_path / "ok.csv").resolve()


def test_a_directory_swapped_for_a_symlink_out_after_the_check_is_refused(tmp_path: Path):
    """What the import does when a source changes between submission and reading."""
    base, outside = tmp_path / "imports", tmp_path / "outside"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "a.csv").write_text("inside\n")
    outside.mkdir()
    (outside / "a.csv").write_text("secret\n")
    resolve_under(base, "sub/a.csv")  # the check at submission passes
    (base / "sub" / "a.csv").unlink()
    (base / "sub").rmdir()
    (base / "sub").symlink_to(outside)
    with pytest.raises(UnsafePath):
        open_under(base, "sub/a.csv")


def test_symlink_out_of_the_import_directory_is_refused(tmp_path: Path):
    base = tmp_path / "imports"
    base.mkdir()
    (tmp_path / "secret.csv").write_text("x\n")
    (base / "link.csv").symlink_to(tmp_path / "secret.csv")
    (base / "ok.csv").write_text("y\n")
    with pytest.raises(UnsafePath):
        resolve_under(base, "link.csv")
    assert resolve_under(base, "ok.csv") == (base / "ok.csv").resolve()


@pytest.mark.parametrize("project_id", ["a", "team:alpha", "A.b_c-d:9", "9" * 200])
def test_a_new_project_id_may_hold_colons_dots_dashes_and_underscores(project_id: str):
    check_new_project_id(project_id)


@pytest.mark.parametrize("project_id", ["", "_a", ".a", "-a", "..", "a/b", "a b", "a\n", "a" * 201])
def test_a_new_project_id_starts_with_a_letter_or_digit_and_has_no_other_characters(
    project_id: str,
):
    with pytest.raises(InvalidProjectId, match="letter or digit"):
        check_new_project_id(project_id)


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
def test_each_job_and_each_project_has_a_folder_of_its_own(first: str, second: str):
    for folder in (job_folder, project_folder):
        name = folder(first)
        assert "/" not in name and "\\" not in name and name not in (".", "..", "")
        assert (name == folder(second)) == (first == second)


def test_artifacts_are_only_the_jobs_own_plain_files(tmp_path: Path):
    storage = LocalStorage(tmp_path / "imports", tmp_path / "artifacts")
    directory = storage.job_dir("job-1")
    directory.mkdir(parents=True)
    (directory / "export.csv").write_text("id\n")
    (tmp_path / "secret.txt").write_text("x\n")
    (directory / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert [artifact.name for artifact in storage.list_artifacts("job-1")] == ["export.csv"]
    for name in ("../secret.txt", "link.txt", "../../secret.txt", "/etc/passwd"):
        assert find_artifact(storage, "job-1", name) is None
