"""The flags of `pastools jobs …`; `commands` runs what they ask for."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pastools_jobs.jobs_cli.client import DEFAULT_URL

P = TypeVar("P", bound=argparse.ArgumentParser)

ACTIONS = ("cancel", "retry", "pause", "resume")
"""The transitions a job takes by one POST to /api/jobs/{id}/<action>."""

EXIT_CODES = (
    "Exit codes: 0 done (for submit --wait and watch: the job completed); 1 the job "
    "failed; 2 the command could not run (a bad flag, the API unreachable or refusing); "
    "3 the job was cancelled; 130 interrupted with Ctrl-C (the job goes on)."
)


class OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line on stderr and exit code 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        print(f"pastools: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_jobs_args(argv: Sequence[str]) -> argparse.Namespace:
    """`pastools jobs …` alone, without the platform's commands (see `pastools_jobs.entry`)."""
    parser = OneLineParser(prog="pastools")
    add_jobs_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def add_jobs_parser(commands: "argparse._SubParsersAction[P]") -> None:
    jobs = commands.add_parser(
        "jobs",
        help="submit, list, watch and act on jobs through the REST API",
        description="The REST API from a terminal. The API's address comes from --url or "
        f"PASTOOLS_URL ({DEFAULT_URL} when neither is set), the token from --token or "
        "PASTOOLS_TOKEN. --json prints the API's answers, one JSON document per line, and "
        f"nothing else on stdout. {EXIT_CODES}",
    )
    actions = jobs.add_subparsers(dest="action", required=True)
    common = type(jobs)(add_help=False)
    common.add_argument("--url", help=f"the API's base URL (PASTOOLS_URL; default {DEFAULT_URL})")
    common.add_argument("--token", help="an API token (PASTOOLS_TOKEN)")
    common.add_argument(
        "--json", action="store_true", help="print the API's JSON answers and nothing else"
    )
    polling = type(jobs)(add_help=False)
    polling.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="time between two looks at the job (default 1)",
    )

    submit = actions.add_parser(
        "submit",
        parents=[common, polling],
        help="submit a job",
        description="Submit a job; with --wait, follow it to its end. " + EXIT_CODES,
    )
    submit.add_argument("type", help="the job type: import, export, validation, test_run, …")
    submit.add_argument("-p", "--project", required=True, help="the project the job runs in")
    submit.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="one parameter, repeatable; a VALUE that reads as JSON (5, true, null, "
        '"007", [1, 2]) is that value, any other a string',
    )
    submit.add_argument(
        "--params-json",
        type=_json_object,
        default={},
        metavar="JSON",
        help="the parameters as one JSON object; --param entries override its keys",
    )
    submit.add_argument(
        "--file",
        type=Path,
        help="upload this file to the project first and pass it as params.source",
    )
    submit.add_argument(
        "--timeout", type=int, metavar="SECONDS", help="fail the job if it runs longer"
    )
    submit.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="submitting again with the same key answers the first job instead of a new one",
    )
    submit.add_argument(
        "--priority",
        type=int,
        choices=range(1, 6),
        metavar="1-5",
        help="1 runs first, 5 last (the server's default is 3)",
    )
    submit.add_argument(
        "--wait", action="store_true", help="show its progress and wait for its end"
    )

    listing = actions.add_parser(
        "list", parents=[common], help="list jobs, newest first", description=EXIT_CODES
    )
    listing.add_argument(
        "--status",
        action="append",
        default=[],
        choices=["queued", "running", "completed", "failed", "cancelled"],
        help="only jobs in this status (repeatable: any of them)",
    )
    listing.add_argument(
        "--type", action="append", default=[], help="only jobs of this type (repeatable)"
    )
    listing.add_argument("-p", "--project", help="only this project's jobs")
    listing.add_argument(
        "--param",
        action="append",
        type=_filter,
        default=[],
        metavar="NAME=VALUE",
        help="only jobs whose parameter NAME is VALUE (a trailing * matches a prefix)",
    )
    listing.add_argument(
        "--limit", type=int, default=20, help="jobs per page, at most 500 (default 20)"
    )
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--cursor", help="the page after the one that printed this cursor")
    pages.add_argument("--all", action="store_true", help="every page, one after another")

    show = actions.add_parser("show", parents=[common], help="one job in detail")
    show.add_argument("id", help="the job's id")

    watch = actions.add_parser(
        "watch",
        parents=[common, polling],
        help="follow a job's progress to its end",
        description="A live progress bar until the job ends. " + EXIT_CODES,
    )
    watch.add_argument("id", help="the job's id")

    for action in ACTIONS:
        acting = actions.add_parser(action, parents=[common], help=f"{action} a job")
        acting.add_argument("id", help="the job's id")
        acting.add_argument("--reason", help="why: kept in the audit trail")

    logs = actions.add_parser(
        "logs", parents=[common, polling], help="the log lines a job's work wrote"
    )
    logs.add_argument("id", help="the job's id")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until the job ends"
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("must lie between 0.05 and 3600 seconds")
    return value


def _param(text: str) -> tuple[str, Any]:
    name, value = _filter(text)
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _filter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value
