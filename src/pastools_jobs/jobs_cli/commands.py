"""What each `pastools jobs` command does, and its exit code.

Every failure ends as one line on stderr and a non-zero exit, never a traceback: this
module is the boundary where the CLI's errors become words.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from pastools_jobs.jobs_cli.client import ClientSettings, CommandError, JobsClient
from pastools_jobs.jobs_cli.parser import ACTIONS
from pastools_jobs.jobs_cli.render import (
    JobProgressBar,
    compact,
    ending_line,
    job_detail,
    job_table,
    log_line,
    stderr_console,
    stdout_console,
)
from pastools_jobs.jobs_cli.views import JobPageView, JobView, LogPageView, one_line

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_CANCELLED = 3
EXIT_INTERRUPTED = 130
"""What a shell gives a command stopped by Ctrl-C (128 + SIGINT)."""
EXIT_READER_GONE = 1
"""Stdout's reader left: what rich answers for a table, so `--json` answers the same."""

Command = Callable[[JobsClient, argparse.Namespace], int]


def run_jobs(args: argparse.Namespace) -> int:
    """Runs one `pastools jobs` command; returns its exit code."""
    try:
        settings = ClientSettings()
        client = JobsClient(args.url or settings.url, args.token or settings.token)
    except CommandError as error:
        return _error(str(error))
    try:
        code = _COMMANDS[args.action](client, args)
        sys.stdout.flush()  # here, where a closed pipe can still be answered
        return code
    except BrokenPipeError:
        return _reader_gone()
    except CommandError as error:
        return _error(str(error))
    except ValidationError as error:
        return _error(
            f"the API at {client.url} answered in a shape this command does not "
            f"know ({error.error_count()} differences); is it another version?"
        )
    except KeyboardInterrupt:
        print("pastools: interrupted (a job already submitted goes on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the promise: one line, never a traceback
        return _error(f"unexpected {type(error).__name__}: {one_line(str(error))}")
    finally:
        client.close()


def _reader_gone() -> int:
    """The reader of stdout left (`pastools jobs list | head`): stop quietly, as `ls` does.
    Stdout goes to /dev/null so that the interpreter's last flush has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_READER_GONE


def _error(message: str) -> int:
    print(f"pastools: {message}", file=sys.stderr)
    return EXIT_ERROR


def _print_json(answer: dict[str, Any]) -> None:
    print(json.dumps(answer, ensure_ascii=False), flush=True)


def submit(client: JobsClient, args: argparse.Namespace) -> int:
    params = {**args.params_json, **dict(args.param)}
    if args.file is not None:
        uploaded = client.upload(args.project, args.file)
        params["source"] = uploaded["source"]
        print(
            f"Uploaded {one_line(args.file.name)} as {one_line(uploaded['source'])}",
            file=sys.stderr,
        )
    body: dict[str, Any] = {"type": args.type, "project_id": args.project, "params": params}
    if args.timeout is not None:
        body["timeout_seconds"] = args.timeout
    if args.priority is not None:
        body["priority"] = args.priority
    answer = client.submit(body, args.idempotency_key)
    if args.wait:
        return _follow(client, answer, args)
    if args.json:
        _print_json(answer)
    else:
        job = JobView.model_validate(answer)
        print(
            f"Job {one_line(job.id)} submitted ({one_line(job.type)} in project "
            f"{one_line(job.project_id)}): {job.status}"
        )
    return EXIT_OK


def watch(client: JobsClient, args: argparse.Namespace) -> int:
    return _follow(client, client.job(args.id), args)


def _follow(client: JobsClient, answer: dict[str, Any], args: argparse.Namespace) -> int:
    """A progress bar until the job ends; the exit code says how it ended."""
    job = JobView.model_validate(answer)
    with JobProgressBar(stderr_console()) as bar:
        bar.show(job)
        while not job.finished:
            time.sleep(args.interval)
            answer = client.job(job.id)
            job = JobView.model_validate(answer)
            bar.show(job)
    if args.json:
        _print_json(answer)
    if job.status == "completed":
        if not args.json:
            print(ending_line(job))
            if job.result is not None:
                print(f"Result: {compact(job.result)}")
        return EXIT_OK
    print(f"pastools: {ending_line(job)}", file=sys.stderr)
    return EXIT_FAILED if job.status == "failed" else EXIT_CANCELLED


def list_jobs(client: JobsClient, args: argparse.Namespace) -> int:
    query = [("status", status) for status in args.status]
    query += [("type", job_type) for job_type in args.type]
    query += [(f"param.{name}", value) for name, value in args.param]
    query += [("project_id", args.project)] if args.project else []
    query += [("limit", str(args.limit))]
    cursor: str | None = args.cursor
    jobs: list[JobView] = []
    while True:
        answer = client.page(query + ([("cursor", cursor)] if cursor else []))
        page = JobPageView.model_validate(answer)
        if args.json:
            _print_json(answer)
        jobs += page.items
        cursor = page.next_cursor
        if not (args.all and cursor):
            break
    if not args.json:
        _print_jobs(jobs, cursor)
    return EXIT_OK


def _print_jobs(jobs: list[JobView], cursor: str | None) -> None:
    if jobs:
        stdout_console().print(job_table(jobs))
    else:
        print("No jobs match.", file=sys.stderr)
    if cursor:
        print(f"More: add --cursor {cursor} (or --all)", file=sys.stderr)


def show(client: JobsClient, args: argparse.Namespace) -> int:
    answer = client.job(args.id)
    if args.json:
        _print_json(answer)
    else:
        stdout_console().print(job_detail(JobView.model_validate(answer)))
    return EXIT_OK


_DONE = {
    "cancel": "cancel requested",
    "retry": "retried",
    "pause": "paused",
    "resume": "resumed",
}


def act(client: JobsClient, args: argparse.Namespace) -> int:
    """cancel, retry, pause or resume: one POST, the job as it now is."""
    answer = client.act(args.id, args.action, args.reason)
    if args.json:
        _print_json(answer)
    else:
        job = JobView.model_validate(answer)
        print(f"Job {one_line(job.id)} {_DONE[args.action]}: {job.status}, attempt {job.attempt}")
    return EXIT_OK


def logs(client: JobsClient, args: argparse.Namespace) -> int:
    """Every line so far, page after page; with --follow, new ones until the job ends
    (then one more look, for the lines written just before its end)."""
    console = stdout_console()
    after: int | None = None
    ended = False
    printed = False
    while True:
        answer = client.logs(args.id, after)
        page = LogPageView.model_validate(answer)
        if page.dropped and after is None and not args.json:
            print(f"({page.dropped} earlier lines were dropped)", file=sys.stderr)
        if page.lines or (args.json and not printed and not args.follow):
            printed = True
            _print_log_page(console, answer, page, as_json=args.json)
        if page.lines:
            after = max(line.seq for line in page.lines)
            continue
        if not args.follow or ended:
            break
        ended = JobView.model_validate(client.job(args.id)).finished
        if not ended:
            time.sleep(args.interval)
    if not printed and not args.json:
        print("No log lines.", file=sys.stderr)
    return EXIT_OK


def _print_log_page(
    console: Console, answer: dict[str, Any], page: LogPageView, *, as_json: bool
) -> None:
    if as_json:
        _print_json(answer)
        return
    for line in page.lines:
        console.print(log_line(line), soft_wrap=True)


_COMMANDS: dict[str, Command] = {
    "submit": submit,
    "list": list_jobs,
    "show": show,
    "watch": watch,
    "logs": logs,
    **{action: act for action in ACTIONS},
}
