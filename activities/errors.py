"""Failures that are the input's fault: non-retryable, so the job fails at once, saying why."""

from typing import Any

from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from pastools_jobs.datasets.projects import get_project
from pastools_jobs.db.models import Project
from pastools_jobs.domain import ProjectNotFound


def input_error(message: str, error_type: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details or None, type=error_type, non_retryable=True)


def project_or_fail(session: Session, project_id: str) -> Project:
    try:
        return get_project(session, project_id)
    except ProjectNotFound as error:
        raise input_error(str(error), "ProjectNotFound", project_id=project_id) from None
