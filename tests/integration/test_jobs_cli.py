"""`pastools jobs …` run as a user runs it, a process against a running stack: submit
(with a file, waiting for the end), list, show, watch, cancel, retry, the exit codes and
one-line errors, `--json` for scripts, and the progress bar drawn in a real terminal (tmux).

SQLite only: the commands talk HTTP, and the API on each database is tested elsewhere.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.jobs import JobsApi
from tests.support.services import Stack, free_port
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]

PASTOOLS = Path(sys.executable).with_name("pastools")
"""The installed command, as a user's shell finds it in the virtual environment."""


def cli_env(stack: Stack) -> dict[str, str]:
    """The API's address and the admin token, the way a user exports them."""
    env = {k: v for k, v in os.environ.items() if k not in ("PASTOOLS_URL", "PASTOOLS_TOKEN")}
    return {**env, "PASTOOLS_URL": stack.url, "PASTOOLS_TOKEN": stack.admin_token}


def jobs(stack: Stack, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`pastools jobs <args>` with stdout and stderr captured (pipes: no progress bar)."""
    return subprocess.run(
        [str(PASTOOLS), "jobs", *map(str, args)],
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    """What a failed command says: one line on stderr, nothing on stdout, no traceback."""
    assert run.returncode != 0, run.stdout
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stdout == "", run.stdout
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("pastools: "), lines[0]
    return lines[0]


def json_lines(run: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@dataclass
class Imports:
    """One project's two imports, both submitted by `submit --file … --wait`."""

    project: str
    completed: subprocess.CompletedProcess[str]
    failed: subprocess.CompletedProcess[str]

    @staticmethod
    def job_id(run: subprocess.CompletedProcess[str]) -> str:
        found = re.search(r"job ([0-9a-f]{32}) ", run.stdout + run.stderr)
        assert found, (run.stdout, run.stderr)
        return found.group(1)


@pytest.fixture(scope="module")
def imports(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Imports:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    with stack.client() as http:
        assert http.post("/api/projects", json={"id": project}).status_code == 201
    files = tmp_path_factory.mktemp("cli-files")
    (files / "people.csv").write_text("id,name\n1,Ada\n2,Linus\n")
    (files / "empty.csv").write_bytes(b"")
    fast = ("--wait", "--interval", "0.2")
    return Imports(
        project,
        jobs(stack, "submit", "import", "-p", project, "--file", files / "people.csv",
             "--param", "key_column=id", *fast),
        jobs(stack, "submit", "import", "-p", project, "--file", files / "empty.csv", *fast),
    )  # fmt: skip


def test_submit_wait_of_a_probe_exits_0_with_its_result(stack: Stack) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    key = f"key-{uuid.uuid4().hex}"
    args = ("submit", "probe", "-p", project, "--param", "items=3", "--idempotency-key", key)
    run = jobs(stack, *args, "--wait", "--interval", "0.2")
    assert run.returncode == 0, run.stderr
    completed, result = run.stdout.splitlines()
    assert re.fullmatch(r"job [0-9a-f]{32} completed in \d+\.\d s", completed), completed
    assert json.loads(result.removeprefix("Result: ")) == {"items": 3, "resumed_from": 0}
    assert run.stderr == "", "a pipe gets no progress bar"

    # The same key again answers the same job; --json is the API's answer and nothing else.
    (again,) = json_lines(jobs(stack, *args, "--json"))
    assert again["id"] == Imports.job_id(run)
    (watched,) = json_lines(jobs(stack, "watch", again["id"], "--json"))
    assert (watched["status"], watched["result"]["items"]) == ("completed", 3)


def test_submit_with_a_priority_reaches_temporal(stack: Stack) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    (job,) = json_lines(jobs(stack, "submit", "probe", "-p", project, "--priority", "1", "--json"))

    assert job["priority"] == 1
    described = stack.temporal.cli("workflow", "describe", "-w", job["id"], "-o", "json")
    assert json.loads(described.stdout)["workflowExecutionInfo"]["priority"]["priorityKey"] == 1
    refused = jobs(stack, "submit", "probe", "-p", project, "--priority", "9")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1


def test_submit_with_a_file_uploads_it_and_imports_it(imports: Imports) -> None:
    run = imports.completed
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"Uploaded people\.csv as uploads/\S+-people\.csv\n", run.stderr)
    result = json.loads(run.stdout.splitlines()[1].removeprefix("Result: "))
    assert (result["imported"], result["format"]) == (2, "csv")
    assert result["source"] in run.stderr


def test_a_failing_job_exits_1_with_its_reason_in_one_line(imports: Imports) -> None:
    run = imports.failed
    assert run.returncode == 1
    uploaded, reason = run.stderr.splitlines()
    assert uploaded.startswith("Uploaded empty.csv as ")
    assert re.fullmatch(
        r"pastools: job [0-9a-f]{32} failed after \S+ s: SourceUnusable: \S+: the file is empty",
        reason,
    ), reason
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_list_filters_pages_and_json(stack: Stack, imports: Imports) -> None:
    done, failed = Imports.job_id(imports.completed), Imports.job_id(imports.failed)
    project = ("-p", imports.project)

    (page,) = json_lines(jobs(stack, "list", *project, "--status", "failed", "--json"))
    assert [job["id"] for job in page["items"]] == [failed]
    assert page["next_cursor"] is None

    table = jobs(stack, "list", *project, "--type", "import")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "PROJECT", "STATUS", "PROGRESS", "CREATED", "DURATION"]
    assert [(row.split()[0], row.split()[3]) for row in rows] == [
        (failed, "failed"),
        (done, "completed"),
    ]
    assert jobs(stack, "list", *project, "--type", "probe").stdout == ""

    first = jobs(stack, "list", *project, "--limit", "1")
    assert len(first.stdout.splitlines()) == 2  # the header and the newest job
    assert re.fullmatch(r"More: add --cursor \S+ \(or --all\)\n", first.stderr), first.stderr

    pages = json_lines(jobs(stack, "list", *project, "--limit", "1", "--all", "--json"))
    assert [[job["id"] for job in p["items"]] for p in pages] == [[failed], [done]]
    assert pages[-1]["next_cursor"] is None


def test_a_reader_that_leaves_early_gets_no_error(stack: Stack, imports: Imports) -> None:
    """`pastools jobs list --json | head -0`: the pipe is closed before anything is written.
    No traceback, no "Exception ignored": a quiet exit 1, as the table's (rich's) own."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run(
            [str(PASTOOLS), "jobs", "list", "-p", imports.project, "--json"],
            env=cli_env(stack),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert run.stderr == ""
    assert run.returncode == 1


def test_show_retry_and_watch_of_a_failed_job(stack: Stack, imports: Imports) -> None:
    failed = Imports.job_id(imports.failed)
    shown = jobs(stack, "show", failed)
    assert shown.returncode == 0, shown.stderr
    lines = [line.rstrip() for line in shown.stdout.splitlines()]
    assert "status     failed" in lines
    assert f"project    {imports.project}" in lines
    assert any(re.fullmatch(r"error +SourceUnusable: \S+: the file is empty", ln) for ln in lines)

    retried = jobs(stack, "retry", failed, "--reason", "once more")
    assert retried.returncode == 0, retried.stderr
    assert re.fullmatch(
        rf"Job {failed} retried: (queued|running|failed), attempt 2\n", retried.stdout
    )

    watched = jobs(stack, "watch", failed, "--interval", "0.2")
    assert watched.returncode == 1
    assert "SourceUnusable" in one_error_line(watched)
    (job,) = json_lines(jobs(stack, "show", failed, "--json"))
    assert [a["status"] for a in job["attempts"]] == ["failed", "failed"]


def test_cancel_of_a_running_job(stack: Stack, api: JobsApi) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    params = ("--param", "items=1000", "--param", "item_ms=50")
    (job,) = json_lines(jobs(stack, "submit", "probe", "-p", project, *params, "--json"))
    assert job["status"] == "queued"
    api.wait_running(job["id"])

    cancel = jobs(stack, "cancel", job["id"], "--reason", "wrong file")
    assert cancel.returncode == 0, cancel.stderr
    assert re.fullmatch(
        rf"Job {job['id']} cancel requested: (running|cancelled), attempt 1\n", cancel.stdout
    )

    watched = jobs(stack, "watch", job["id"], "--interval", "0.2")
    assert watched.returncode == 3
    assert re.fullmatch(
        rf"pastools: job {job['id']} was cancelled after \S+ s", one_error_line(watched)
    )
    entries = api.http.get("/api/audit", params={"job_id": job["id"]}).json()["items"]
    assert [(e["action"], e["reason"]) for e in entries] == [
        ("job.cancel", "wrong file"),
        ("job.submit", None),
    ]


def test_errors_are_one_line_and_a_non_zero_exit(stack: Stack, tmp_path: Path) -> None:
    bad_token = jobs(stack, "list", "--token", "pst_nope_nope")
    assert one_error_line(bad_token).startswith("pastools: Not authenticated: ")
    assert bad_token.returncode == 2

    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = jobs(stack, "show", "some-job", "--url", nowhere)
    assert one_error_line(unreachable).startswith(f"pastools: cannot reach the API at {nowhere}: ")

    missing = jobs(stack, "show", "no-such-job")
    assert (
        one_error_line(missing) == "pastools: Job not found: There is no job with id 'no-such-job'."
    )

    invalid = jobs(stack, "submit", "probe", "-p", "x", "--param", "items=0")
    assert "params.items" in one_error_line(invalid)

    for bad_flags in (
        ["submit", "probe", "-p", "x", "--priority", "9"],
        ["list", "--status", "sleeping"],
    ):
        refused = jobs(stack, *bad_flags)
        assert one_error_line(refused).startswith("pastools: error: "), bad_flags
        assert refused.returncode == 2

    unreadable = jobs(stack, "submit", "import", "-p", "x", "--file", tmp_path / "absent.csv")
    assert one_error_line(unreadable).endswith("absent.csv: No such file or directory")


def test_pause_and_resume_of_a_running_job(stack: Stack, api: JobsApi) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    params = ("--param", "items=1000", "--param", "item_ms=20")
    (job,) = json_lines(jobs(stack, "submit", "probe", "-p", project, *params, "--json"))
    api.wait_running(job["id"])

    paused = jobs(stack, "pause", job["id"], "--reason", "night batch")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith(f"Job {job['id']} paused: ")
    held = api.wait_for_job(job["id"], lambda j: j["paused"], what="paused")["progress"]["done"]
    (resumed,) = json_lines(jobs(stack, "resume", job["id"], "--json"))
    assert resumed["paused"] is False
    api.wait_for_job(job["id"], lambda j: j["progress"]["done"] > held, what="work again")
    assert jobs(stack, "cancel", job["id"]).returncode == 0


def test_logs_of_a_job_and_follow(stack: Stack, imports: Imports) -> None:
    failed = Imports.job_id(imports.failed)
    printed = jobs(stack, "logs", failed)
    assert printed.returncode == 0, printed.stderr
    assert any(
        " WARNING " in line and "Attempt 1 failed" in line and "the file is empty" in line
        for line in printed.stdout.splitlines()
    ), printed.stdout

    pages = json_lines(jobs(stack, "logs", failed, "--json"))
    lines = [line for page in pages for line in page["lines"]]
    assert [line["seq"] for line in lines] == sorted({line["seq"] for line in lines})

    followed = jobs(stack, "logs", failed, "--follow", "--interval", "0.2")
    assert followed.returncode == 0, "the job has ended: --follow stops after the last line"
    assert followed.stdout == printed.stdout


@pytest.fixture
def terminal() -> Iterator["Terminal"]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: scripts/test installs it")
    session = Terminal(f"pastools-cli-{uuid.uuid4().hex[:8]}")
    yield session
    session.close()


@dataclass
class Terminal:
    """A detached tmux server of the test's own, with one 150-column window."""

    socket: str

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def run(self, command: str, env: dict[str, str]) -> None:
        """`command`, then `EXIT=<its exit code>`; the window stays for `screen`."""
        shell = f"{command}; echo EXIT=$?; sleep 600"
        # The pane's size is the terminal's, as for a user: not a COLUMNS inherited from the
        # test process (pytest-xdist's workers have one), which rich would obey instead.
        own = {name: value for name, value in env.items() if name not in ("COLUMNS", "LINES")}
        self.tmux("new-session", "-d", "-x", "150", "-y", "20", shell, env=own)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


ITEMS = 80
"""Twelve seconds of work: the bar is seen part of the way even on a busy machine, where
the command itself may take seconds to start."""


def test_progress_bar_in_a_terminal(stack: Stack, terminal: Terminal) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    command = shlex.join(
        [str(PASTOOLS), "jobs", "submit", "probe", "-p", project, "--param", f"items={ITEMS}",
         "--param", "item_ms=150", "--wait", "--interval", "0.3"]
    )  # fmt: skip
    terminal.run(command, cli_env(stack))

    def bar_part_way() -> re.Match[str] | None:
        # The id, the status, the bar, a percentage short of 100, the items done.
        drawn = rf"[0-9a-f]{{32}} running +[━╸╺ ]*━[━╸╺ ]* +([1-9][0-9]?)% (\d+)/{ITEMS} "
        return re.search(drawn, terminal.screen())

    part_way = wait_for(bar_part_way, timeout=60, what="a progress bar part of the way")
    assert 0 < int(part_way.group(1)) < 100

    def finished() -> str | None:
        screen = terminal.screen()
        return screen if "EXIT=" in screen else None

    ended = wait_for(finished, timeout=60, what="the command's end")
    assert re.search(rf"completed +━+ +100% {ITEMS}/{ITEMS} ", ended), "the bar ends full"
    assert re.search(r"^job [0-9a-f]{32} completed in \d+\.\d s$", ended, re.M), ended
    assert f'Result: {{"items": {ITEMS}, "resumed_from": 0}}' in ended
    assert "EXIT=0" in ended
