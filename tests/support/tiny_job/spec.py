"""The greet job type as the API and the mirror know it: no workflow or activity code."""

from pydantic import BaseModel, ConfigDict, Field

from pastools_jobs.job_spec import JobTypeSpec


class GreetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="world", min_length=1, max_length=100, description="Whom.")


class Greeting(BaseModel):
    greeting: str


GREET = JobTypeSpec(
    "greet",
    "GreetJob",
    GreetParams,
    Greeting,
    "Greet someone by name.",
    "tests.support.tiny_job.workflow:GreetJob",
)
