"""A job type as the API, the mirror and the worker know it: its spec.

Kept apart from the catalog of job types so that a job type of another package can
import it while the catalog is loading that package's spec (`job_catalog`).
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class JobTypeSpec(Generic[P, R]):
    name: str
    """The job type, as submitted and stored on the row."""
    workflow_name: str
    params_model: type[P]
    result_model: type[R]
    """What a completed job of this type returns; the row keeps it as its JSON."""
    description: str
    workflow: str
    """Where the worker finds the workflow class, as `module:Class`: named rather than
    imported, so that the API and the mirror load no workflow or activity code."""
    submittable: bool = True
    """Whether `POST /api/jobs` takes it. A bulk action is started by its own route, which
    checks the role its action needs, and is otherwise listed and shown like any job."""
