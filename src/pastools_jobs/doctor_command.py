"""`pastools doctor`: the consistency check as an operator runs it, and its output.

One line per difference, in words; `--json` for scripts. The exit code answers
"is anything still wrong?": 0 consistent (or all repaired), 1 differences remain,
2 the check could not run.
"""

import asyncio
import json
import sys
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import TemporalUnavailable
from pastools_jobs.mirror.doctor import Doctor, Report
from pastools_jobs.temporal import JobLauncher, connect

CONSISTENT, DIFFERENCES, FAILED = 0, 1, 2


def run_doctor(settings: Settings, *, fix: bool, as_json: bool) -> int:
    try:
        report = asyncio.run(_examine(settings, fix=fix))
    except (RuntimeError, RPCError, TemporalUnavailable, SQLAlchemyError, OSError) as error:
        print(f"pastools doctor: the check could not run: {error}", file=sys.stderr)
        return FAILED
    print(_as_json(report, fix) if as_json else _as_text(report, settings, fix))
    remaining = report.unrepaired if fix else report.differences
    return DIFFERENCES if remaining else CONSISTENT


async def _examine(settings: Settings, *, fix: bool) -> Report:
    client = await connect(settings, "pastools-doctor")
    db = Database(settings.resolved_database_url, application_name="pastools-doctor")
    try:
        doctor = Doctor(
            db,
            JobLauncher.of(client, settings),
            keep_closed_for=timedelta(days=settings.cleanup_max_age_days),
        )
        report = await doctor.examine()
        if fix:
            await doctor.repair(report)
        return report
    finally:
        db.dispose()


def _as_text(report: Report, settings: Settings, fix: bool) -> str:
    where = f"task queue {settings.task_queue}"
    compared = f"{report.rows} rows, {report.workflows} workflows"
    if report.consistent:
        return f"consistent: the jobs table agrees with Temporal ({where}; {compared})"
    lines = [f"{len(report.differences)} differences ({where}; {compared}):"]
    for difference in report.differences:
        line = f"{difference.kind:<13} {difference.subject}  {difference.detail}"
        if fix:
            line += " -> repaired" if difference.repaired else " -> NOT repaired"
        lines.append(line)
    if fix:
        lines.append(
            f"repaired {len(report.differences) - len(report.unrepaired)}"
            f" of {len(report.differences)}"
        )
    return "\n".join(lines)


def _as_json(report: Report, fix: bool) -> str:
    return json.dumps(
        {
            "consistent": report.consistent,
            "rows": report.rows,
            "workflows": report.workflows,
            "differences": [
                {
                    "kind": str(difference.kind),
                    "job_id": difference.job_id,
                    "project_id": difference.project_id,
                    "detail": difference.detail,
                    **({"repaired": difference.repaired} if fix else {}),
                }
                for difference in report.differences
            ],
        },
        indent=2,
    )
