"""How jobs look in a terminal: tables, a job's detail, log lines, the live progress bar
and the one line that says how a job ended.

Everything from the API passes through `one_line` (or `Text`, never markup), so a job's
error or log line cannot move the cursor or restyle the terminal.
"""

import json
from datetime import datetime
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from pastools_jobs.jobs_cli.views import JobView, LogLineView, one_line

PIPE_WIDTH = 200
"""Lines written to a pipe or a file: wide enough that no column is cut."""

STATUS_STYLES = {
    "queued": "cyan",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def when(moment: datetime | None) -> str:
    """Local time to the second: what a person compares with their clock."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(duration: float | None) -> str:
    if duration is None:
        return "-"
    if duration < 60:
        return f"{duration:.1f} s"
    minutes, rest = divmod(int(duration), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"


def status_text(job: JobView) -> Text:
    label = job.status + (" (paused)" if job.paused else "")
    label += " (cancelling)" if job.cancel_requested and not job.finished else ""
    return Text(label, style=STATUS_STYLES.get(job.status, ""))


VERDICT_STYLES = {"pass": "green", "warn": "yellow", "error": "red", "fail": "red"}


def verdict_text(job: JobView) -> Text | None:
    """A test run's overall status or a validation's verdict, apart from the result's
    JSON: whether the data passed is what a reader of a finished data job looks for first.
    None for other jobs, and for results from before verdicts existed."""
    result = job.result if isinstance(job.result, dict) else {}
    if job.type == "test_run" and result.get("status") in ("pass", "warn", "error"):
        verdict = result["status"]
        tally = ", ".join(f"{result.get(n, 0)} {n}" for n in ("passed", "warned", "failed"))
        label = f"{verdict} ({tally})"
    elif job.type == "validation" and result.get("verdict") in ("pass", "fail"):
        verdict = result["verdict"]
        invalid = result.get("invalid", 0)
        checked = result.get("valid", 0) + invalid
        limit = result.get("max_invalid")
        label = f"{verdict} ({invalid} invalid of {checked}, max_invalid {limit})"
    else:
        return None
    return Text(one_line(label), style=VERDICT_STYLES[verdict])


def counts(job: JobView) -> str:
    total = job.progress.total
    return f"{job.progress.done}/{total}" if total is not None else str(job.progress.done)


def job_table(jobs: list[JobView]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("ID", "TYPE", "PROJECT", "STATUS", "PROGRESS", "CREATED", "DURATION"):
        table.add_column(name, no_wrap=True)
    for job in jobs:
        table.add_row(
            Text(one_line(job.id)),
            Text(one_line(job.type)),
            Text(one_line(job.project_id)),
            status_text(job),
            f"{job.progress.percent:>3d}% {counts(job)}",
            when(job.created_at),
            seconds(job.duration_seconds),
        )
    return table


def job_detail(job: JobView) -> Table:
    """One job as `field  value` rows: what `show` prints."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    rows: list[tuple[str, Text | str]] = [
        ("id", Text(one_line(job.id))),
        ("type", Text(one_line(job.type))),
        ("project", Text(one_line(job.project_id))),
        ("status", status_text(job)),
        ("attempt", str(job.attempt)),
        ("progress", Text(progress_line(job))),
        ("created", when(job.created_at)),
        ("started", when(job.started_at)),
        ("completed", when(job.completed_at)),
        ("duration", seconds(job.duration_seconds)),
        ("params", Text(compact(job.params))),
    ]
    if job.error is not None:
        rows.append(("error", Text(error_line(job), style="red")))
    verdict = verdict_text(job)
    if verdict is not None:
        rows.append(("verdict", verdict))
    if job.result is not None:
        rows.append(("result", Text(compact(job.result))))
    if job.workflow_url:
        rows.append(("workflow", Text(one_line(job.workflow_url))))
    for name, value in rows:
        table.add_row(name, value)
    return table


def progress_line(job: JobView) -> str:
    line = f"{job.progress.percent}% ({counts(job)})"
    message = one_line(job.progress.message or "")
    return f"{line} {message}" if message else line


def compact(value: Any) -> str:
    return one_line(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


def error_line(job: JobView) -> str:
    if job.error is None:
        return ""
    message = one_line(job.error.message)
    return f"{one_line(job.error.type)}: {message}" if message else one_line(job.error.type)


def ending_line(job: JobView) -> str:
    """How a finished job ended, in one line: the completion, or the reason it did not."""
    took = seconds(job.duration_seconds) if job.duration_seconds is not None else None
    if job.status == "completed":
        return f"job {one_line(job.id)} completed" + (f" in {took}" if took else "")
    verb = "failed" if job.status == "failed" else "was cancelled"
    line = f"job {one_line(job.id)} {verb}" + (f" after {took}" if took else "")
    if job.error is None or job.error.type == CANCELLED_ERROR:
        return line  # its message only says "cancelled" again
    return f"{line}: {error_line(job)}"


CANCELLED_ERROR = "Cancelled"
"""The error type of a job cancelled the ordinary way."""


def log_line(line: LogLineView) -> Text:
    text = Text(f"{when(line.at)} ")
    text.append(f"{one_line(line.level):<8}", style=_LEVEL_STYLES.get(line.level, ""))
    text.append(f" #{line.attempt} {one_line(line.message)}")
    return text


_LEVEL_STYLES = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


class JobProgressBar:
    """A live bar of one job's progress on stderr, drawn only in a terminal: a pipe or a
    file gets the ending line alone, and stdout stays free for the result or `--json`."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[percent]}", markup=False),
            TextColumn("{task.fields[counts]}", markup=False),
            TextColumn("{task.fields[took]}", markup=False),
            TextColumn("{task.fields[message]}", markup=False),
            console=console,
            disable=not console.is_terminal,
            refresh_per_second=4,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> "JobProgressBar":
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def show(self, job: JobView) -> None:
        label = f"{one_line(job.id)} {status_text(job).plain}"
        # No total yet (queued, or work that does not count it): a pulsing bar.
        measured = job.finished or (job.status != "queued" and job.progress.total is not None)
        fields: dict[str, Any] = {
            "description": label,
            "total": 100 if measured else None,
            "completed": job.progress.percent,
            "percent": f"{job.progress.percent:>3d}%" if measured else "   -",
            "counts": counts(job),
            "took": seconds(job.duration_seconds),
            "message": one_line(job.progress.message or ""),
        }
        if self._task is None:
            self._task = self._progress.add_task(**fields)
        else:
            self._progress.update(self._task, **fields)
