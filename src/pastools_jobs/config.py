"""The platform's one configuration object, read from the environment.

Every process (API, worker, `pastools up`) builds a `Settings`; command-line flags
override it through `Settings.model_copy(update=...)`. Nothing else reads `os.environ`.
"""

from collections.abc import Callable
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pastools_jobs.logs import LogFormat

V = TypeVar("V")


class Settings(BaseSettings):
    """Configuration of one PAStools Jobs deployment."""

    model_config = SettingsConfigDict(env_prefix="PASTOOLS_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".data"),
        description="Where the embedded stack keeps its state (Temporal state file, SQLite).",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PASTOOLS_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the jobs database; SQLite under data_dir when unset.",
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "pastools-jobs"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    ui_url: str | None = Field(
        default=None,
        description="Base URL of the Temporal Web UI, for links to workflows.",
    )
    import_dir: Path | None = Field(
        default=None,
        description="Directory of import sources on local disk, one subdirectory per project "
        "(uploads in its uploads/); data_dir/imports when unset.",
    )
    storage_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="`s3://bucket/prefix`: uploads, import sources and artifacts in an "
        "S3-compatible object store (endpoint and credentials from the AWS_* variables); "
        "unset: on local disk, under import_dir and data_dir/artifacts.",
    )
    storage_part_bytes: int = Field(
        default=8 << 20,
        ge=1 << 10,
        description="Size of one part of a multipart upload to the object store, and of what "
        "a checkpointed artifact can lose: S3 wants at least 5 MiB but for the last part.",
    )
    upload_max_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="Largest file accepted by POST /api/projects/{id}/uploads.",
    )
    request_max_bytes: int = Field(
        default=1 << 20,
        gt=0,
        description="Largest request body accepted by every route but uploads (413 past it).",
    )
    import_max_record_bytes: int = Field(
        default=1 << 20,
        gt=0,
        validation_alias=AliasChoices(
            "PASTOOLS_IMPORT_MAX_RECORD_BYTES", "PASTOOLS_IMPORT_MAX_LINE_BYTES"
        ),
        description="Largest record an import takes (a CSV or JSON Lines line, a CSV record, "
        "a Parquet row decoded); a larger one fails the job. The old name, "
        "PASTOOLS_IMPORT_MAX_LINE_BYTES, is still read.",
    )
    import_batch_max_bytes: int = Field(
        default=16 << 20,
        gt=0,
        description="Documents an import batch holds at most, whatever its batch_rows: the "
        "memory of an import is a few batches, and past a few MiB a batch is no faster.",
    )
    partition_rows: int = Field(
        default=500_000,
        ge=1,
        description="Records per partition of a big job: a validation or a CSV or JSON Lines "
        "export over more records than "
        "this is split into key ranges run as parallel activities on any worker; one over "
        "fewer runs as one activity. Several partitions per worker even out the workers' "
        "shares: 5,000,000 records make ten.",
    )
    partition_bytes: int = Field(
        default=256 << 20,
        ge=1,
        description="Bytes per partition of a big import: a keyed CSV or JSON Lines source "
        "larger than this is split into line-aligned byte ranges imported in parallel, a keyed "
        "Parquet file with more data (its row groups uncompressed) into runs of whole row "
        "groups; a smaller one (or a source without key_column) is one activity. "
        "Staging and the final move cost a split import about half its speed on one worker: "
        "it pays with several workers, so only files of millions of rows are split.",
    )
    partition_window: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Partitions of one job started at once, at most, across the workers.",
    )
    partition_slots: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Partitions one worker process runs at once. A partition is CPU-bound "
        "Python, which one process runs one at a time at full speed: more wait on each other, "
        "and the partitions queued meanwhile are taken by the workers that are free.",
    )
    heartbeat_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often activities heartbeat: bounds cancel latency and progress lag.",
    )
    mirror_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often the mirror asks Temporal's visibility what changed.",
    )
    feed_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long an idle live feed waits before a keepalive comment: proxies "
        "close connections that stay silent.",
    )
    feed_recheck_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the live feed checks that its subscribers' tokens are still "
        "valid: a revoked token's open streams end within about this long.",
    )
    mirror_enabled: bool = Field(
        default=True,
        description="Run the mirror in the API process: it works while it holds the lease.",
    )
    mirror_lease_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long the mirror's lease lasts unrenewed: the leader renews it every "
        "fifth of this, and another replica takes over within about this long of the leader "
        "dying or hanging.",
    )
    log_format: LogFormat = Field(
        default="text",
        description="`json`: one JSON object per line, with the job, run, project and "
        "request a line is about where known, for a log pipeline.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ),
        description="Where traces go over OTLP/HTTP (OpenTelemetry's own variables); unset: "
        "no tracing at all.",
    )
    metrics_enabled: bool = Field(
        default=True,
        description="Record metrics and serve them (the API's `/metrics`, a worker's ports, "
        "the Temporal SDK's exporter); off, nothing is recorded and `/metrics` answers 404.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Where a worker serves its own metrics (`/metrics`); unset: none.",
    )
    worker_sdk_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Where a worker's Temporal SDK serves its metrics (polls, task latencies, "
        "slots); unset: none.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="The address the worker's metrics ports listen on: they have no token.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Upgrade the jobs database schema when the API starts."
    )
    worker_max_concurrent_activities: int = 100
    worker_max_concurrent_workflow_tasks: int = 100
    fairness_weights: str = Field(
        default="",
        description="Comma-separated `project=weight` pairs (e.g. `big=0.5,urgent=2`): a "
        "project's share of the workers when several have jobs waiting, against 1 for every "
        "project not named. Read when a job's workflow is started.",
    )
    max_running_jobs_per_project: int | None = Field(
        default=None,
        ge=1,
        description="How many jobs of one project may run at once across all workers (the "
        "rest wait, `queued`); unset: no limit. Read by the workers.",
    )
    project_max_running_jobs: str = Field(
        default="",
        description="Comma-separated `project=limit` pairs that override "
        "max_running_jobs_per_project for the projects named.",
    )
    cleanup_max_age_days: float = Field(
        default=30.0,
        gt=0,
        description="Finished jobs older than this are removed by the periodic cleanup.",
    )
    cleanup_interval_hours: float = Field(default=24.0, gt=0)
    audit_retention_days: float = Field(
        default=365.0,
        gt=0,
        description="Audit entries older than this are removed by the periodic cleanup; "
        "nothing else removes one.",
    )
    job_log_lines: int = Field(
        default=1000,
        ge=0,
        le=1_000_000,
        description="Lines of its activities' logs (INFO and above) kept per job, the newest; "
        "0: none are captured.",
    )
    auth_enabled: bool = Field(
        default=True,
        description="Require an API token (or the dashboard's sign-in cookie) on every route; "
        "off only through an explicit --no-auth, which warns.",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that webhook URLs may reach although they are "
        "loopback, link-local or private (e.g. `127.0.0.0/8` for a receiver on the same "
        "host); empty: only public addresses.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long one webhook request may take, connecting included.",
    )
    webhook_max_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Requests per delivery before it is recorded failed.",
    )
    webhook_retry_initial_seconds: float = Field(
        default=10.0,
        gt=0,
        description="The wait before a delivery's second request; each next one waits twice "
        "as long, up to 10 minutes.",
    )
    webhook_max_concurrent_deliveries: int = Field(
        default=20,
        ge=1,
        description="Webhook requests a worker makes at once, on the deliveries' own task "
        "queue: receivers that hang hold these, never a job's slots.",
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @field_validator("fairness_weights")
    @classmethod
    def _weights_parse(cls, value: str) -> str:
        _parse_pairs(value, _positive_float)
        return value

    @field_validator("project_max_running_jobs")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        _parse_pairs(value, _positive_int)
        return value

    @property
    def fairness_weight_map(self) -> dict[str, float]:
        return _parse_pairs(self.fairness_weights, _positive_float)

    def running_limit(self, project_id: str) -> int | None:
        """How many of the project's jobs may run at once; None: no limit."""
        overrides = _parse_pairs(self.project_max_running_jobs, _positive_int)
        return overrides.get(project_id, self.max_running_jobs_per_project)

    @property
    def webhook_task_queue(self) -> str:
        """The deliveries' task queue, beside the jobs' (and out of the mirror's lists)."""
        return f"{self.task_queue}-webhooks"

    @property
    def webhook_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _parse_networks(self.webhook_allowed_networks)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobs.sqlite3').resolve()}"

    @property
    def resolved_import_dir(self) -> Path:
        return (self.import_dir or self.data_dir / "imports").resolve()

    def body_limit(self, path: str) -> int:
        """Uploads have their own, larger, limit; every other body the JSON one."""
        if path.startswith("/api/projects/") and path.endswith("/uploads"):
            return self.upload_max_bytes
        return self.request_max_bytes

    @property
    def artifacts_dir(self) -> Path:
        return (self.data_dir / "artifacts").resolve()

    @property
    def resolved_ui_url(self) -> str:
        return self.ui_url or f"http://127.0.0.1:{self.ui_port}"

    @property
    def tracing_enabled(self) -> bool:
        return bool(self.otlp_endpoint)

    @property
    def heartbeat_interval(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_interval_seconds)

    def workflow_url(self, job_id: str) -> str:
        return f"{self.resolved_ui_url}/namespaces/{self.temporal_namespace}/workflows/{job_id}"

    def schedule_url(self, schedule_id: str) -> str:
        quoted = quote(schedule_id, safe="")
        return f"{self.resolved_ui_url}/namespaces/{self.temporal_namespace}/schedules/{quoted}"


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{text} is not a positive number")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text} is not a positive whole number")
    return value


def _parse_pairs(value: str, parse: Callable[[str], V]) -> dict[str, V]:
    """`a=1, b=2` as {"a": 1, "b": 2}; a malformed pair stops the process at start, naming it."""
    pairs: dict[str, V] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        project, sep, number = part.partition("=")
        if not sep or not project.strip():
            raise ValueError(f"{part.strip()!r} is not a `project=value` pair")
        pairs[project.strip()] = parse(number.strip())
    return pairs


def _parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """`127.0.0.0/8, ::1/128` as networks; a bad one stops the process at start, naming it."""
    return tuple(ip_network(part.strip()) for part in value.split(",") if part.strip())
