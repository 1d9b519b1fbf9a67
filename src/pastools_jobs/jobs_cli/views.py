"""The parts of the API's answers that the commands read and draw.

Lenient on purpose: fields the CLI does not know (a newer API's) are ignored, and
`--json` prints the answer itself, not these views.
"""

import unicodedata
from datetime import datetime
from typing import Any

from pydantic import BaseModel

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def one_line(text: str) -> str:
    """Text from the API (a job's error, a log line) made safe for a terminal: control
    characters, escape sequences and line breaks included, become spaces."""
    cleaned = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(cleaned.split())


class ProgressView(BaseModel):
    done: int = 0
    total: int | None = None
    percent: int = 0
    message: str | None = None


class ErrorView(BaseModel):
    type: str
    message: str


class JobView(BaseModel):
    id: str
    type: str
    project_id: str
    status: str
    params: dict[str, Any] = {}
    result: Any = None
    attempt: int = 1
    progress: ProgressView = ProgressView()
    error: ErrorView | None = None
    cancel_requested: bool = False
    paused: bool = False
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    workflow_url: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class JobPageView(BaseModel):
    items: list[JobView]
    next_cursor: str | None = None


class LogLineView(BaseModel):
    seq: int
    at: datetime
    level: str
    message: str
    attempt: int = 1


class LogPageView(BaseModel):
    lines: list[LogLineView]
    dropped: int = 0
    next_after: int | None = None
