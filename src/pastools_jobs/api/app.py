"""The FastAPI application: wiring of settings, database, Temporal client and mirror."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pastools_jobs.api.limits import RequestBodyLimit
from pastools_jobs.api.problems import install_problem_handlers
from pastools_jobs.api.request_ids import RequestIds
from pastools_jobs.api.request_metrics import RequestMetrics
from pastools_jobs.api.routes import (
    artifacts,
    audit,
    bulk,
    dashboard,
    data_tests,
    health,
    holds,
    job_logs,
    jobs,
    metrics,
    projects,
    schedules,
    session,
    uploads,
    webhooks,
)
from pastools_jobs.api.schemas import job_out
from pastools_jobs.audit.service import AuditTrail
from pastools_jobs.auth.principal import NO_AUTH_WARNING
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.datasets.projects import ProjectService
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.feed import JobFeed
from pastools_jobs.metrics import TABLES
from pastools_jobs.mirror.leadership import run_mirror
from pastools_jobs.schedules.service import ScheduleService
from pastools_jobs.service import JobService
from pastools_jobs.storage import open_storage
from pastools_jobs.temporal import JobLauncher, connect
from pastools_jobs.tracing import trace_requests
from pastools_jobs.webhooks.service import WebhookService

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    if not settings.auth_enabled:
        log.warning(NO_AUTH_WARNING)

    storage = open_storage(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await asyncio.to_thread(upgrade_database, settings.resolved_database_url)
        db = Database(settings.resolved_database_url, application_name="pastools-api")
        client = await connect(settings, "pastools-api", lazy=True)
        launcher = JobLauncher.of(client, settings)
        app.state.settings = settings
        app.state.db = db
        app.state.client = client
        app.state.storage = storage
        app.state.service = JobService(db, launcher, storage, metered=settings.metrics_enabled)
        app.state.projects = ProjectService(db)
        app.state.audit = AuditTrail(db)
        app.state.webhooks = WebhookService(db, settings.webhook_networks)
        app.state.schedules = ScheduleService(client, db, storage, settings)
        app.state.feed = JobFeed(
            db,
            lambda job: job_out(job, settings, utcnow()).model_dump(mode="json"),
            recheck_seconds=settings.feed_recheck_seconds,
        )
        mirror = None
        # Its own engine: its connections are named apart from the requests'.
        mirror_db = Database(settings.resolved_database_url, application_name="pastools-mirror")
        if settings.metrics_enabled:
            TABLES.watch({"api": db, "mirror": mirror_db}, jobs_db=db)
        if settings.mirror_enabled:
            mirror = asyncio.create_task(run_mirror(mirror_db, launcher, settings), name="mirror")
        try:
            yield
        finally:
            await app.state.feed.close()
            if mirror is not None:
                mirror.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await mirror
            TABLES.forget()
            mirror_db.dispose()
            db.dispose()

    app = FastAPI(
        title="PAStools Jobs",
        version="0.1.0",
        description="Background jobs (imports, exports, validation and test runs) on Temporal.",
        lifespan=lifespan,
        # Measured at ~5 % of the API's CPU per request under load (bench/README.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    trace_requests(app, settings)
    app.add_middleware(RequestBodyLimit, limit_for=settings.body_limit)
    if settings.metrics_enabled:  # off: no middleware to pass through, and /metrics is 404
        app.add_middleware(RequestMetrics)
    app.add_middleware(RequestIds)
    app.include_router(health.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(session.router)
    app.include_router(dashboard.router)
    app.include_router(bulk.router)
    app.include_router(jobs.router)
    app.include_router(artifacts.router)
    app.include_router(job_logs.router)
    app.include_router(projects.router)
    app.include_router(data_tests.router)
    app.include_router(uploads.router)
    app.include_router(audit.router)
    app.include_router(webhooks.router)
    app.include_router(holds.router)
    app.include_router(schedules.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
