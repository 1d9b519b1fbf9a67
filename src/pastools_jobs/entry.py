"""The `pastools` executable.

`pastools jobs …` is a client of the REST API: it is sent on before the platform's own
commands are imported (SQLAlchemy, Alembic, Temporal, FastAPI), so that it starts in a
fraction of their time. Everything else is `pastools_jobs.cli`.
"""

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["jobs"]:
        from pastools_jobs.jobs_cli.commands import run_jobs
        from pastools_jobs.jobs_cli.parser import parse_jobs_args

        raise SystemExit(run_jobs(parse_jobs_args(args)))
    from pastools_jobs.cli import main as platform_main

    platform_main(args)
