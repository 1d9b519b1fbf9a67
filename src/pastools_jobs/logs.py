"""How every process logs: plain lines for a terminal, or one JSON object per line
(`PASTOOLS_LOG_FORMAT=json`) for a log pipeline, with what the line is about.

The job, run and project a line is about, and the request it was logged for, are kept in
context variables: set once where they become known (an activity's start, an API
request) and added to every line logged in that task, whoever logs it.
"""

import json
import logging
import os
import socket
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

LogFormat = Literal["text", "json"]

JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("run_id", default=None)
PROJECT_ID: ContextVar[str | None] = ContextVar("project_id", default=None)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_CONTEXT = {"job_id": JOB_ID, "run_id": RUN_ID, "project_id": PROJECT_ID, "request_id": REQUEST_ID}
_TEXT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, the context that is
    known, and an exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, variable in _CONTEXT.items():
            value = getattr(record, name, None) or variable.get()
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: LogFormat) -> None:
    """The root logger's one handler, on standard error."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(_TEXT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # boto3 says at INFO where it found credentials and endpoint, for every client made.
    logging.getLogger("botocore").setLevel(logging.WARNING)


def connection_name(process: str) -> str:
    """What a process's database connections are called: the process and which replica
    of it (host and pid), so that an operator tells two API replicas' connections apart.
    PostgreSQL keeps 63 bytes of it."""
    return f"{process} {socket.gethostname()}:{os.getpid()}"[:63]


class JobLogContext(Interceptor):
    """Worker interceptor: every line an activity (or the SDK, for it) logs names the job,
    the run and, where the activity's input says, the project."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # Each activity runs in a task of its own: what is set here stays with it.
        info = activity.info()
        JOB_ID.set(info.workflow_id)
        RUN_ID.set(info.workflow_run_id)
        project = getattr(input.args[0], "project_id", None) if input.args else None
        if isinstance(project, str):
            PROJECT_ID.set(project)
        return await self.next.execute_activity(input)
