"""Liveness and readiness probes."""

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pastools_jobs.api.problems import problem, responses
from pastools_jobs.db.engine import Database

router = APIRouter(tags=["health"])

PROBE_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None, responses=responses(503))
async def readyz(request: Request) -> dict[str, str] | JSONResponse:
    """The database and Temporal both answer."""
    checks = {
        "database": await _database_ok(request.app.state.db),
        "temporal": await _temporal_ok(request),
    }
    down = [name for name, ok in checks.items() if not ok]
    if down:
        return problem(503, "Not ready", f"Unreachable: {', '.join(down)}.", checks=_words(checks))
    return _words(checks)


def _words(checks: dict[str, bool]) -> dict[str, str]:
    return {name: "ok" if ok else "unreachable" for name, ok in checks.items()}


async def _database_ok(db: Database) -> bool:
    def ping() -> None:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(ping), PROBE_TIMEOUT.total_seconds())
    except Exception:
        return False
    return True


async def _temporal_ok(request: Request) -> bool:
    try:
        return bool(
            await request.app.state.client.service_client.check_health(timeout=PROBE_TIMEOUT)
        )
    except Exception:
        return False
