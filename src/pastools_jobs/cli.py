"""The `pastools` command: `up` (the whole local stack), `api`, `worker`, `mirror`, `migrate`,
`tokens`, `doctor`, and `jobs` (the REST API from a terminal)."""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from pastools_jobs.auth.commands import add_tokens_parser, run_tokens, sign_in_token
from pastools_jobs.auth.principal import NO_AUTH_WARNING
from pastools_jobs.config import Settings
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.devserver import TemporalBinaryMissing, start_dev_server
from pastools_jobs.domain import JobError
from pastools_jobs.jobs_cli.parser import add_jobs_parser
from pastools_jobs.logs import configure_logging
from pastools_jobs.process import child_process_options, stop_process
from pastools_jobs.storage import checked_storage
from pastools_jobs.tracing import start_tracing

# Flag name -> Settings field; every flag overrides its environment variable.
_OVERRIDES = {
    "data_dir": "data_dir",
    "database_url": "database_url",
    "temporal_address": "temporal_address",
    "namespace": "temporal_namespace",
    "task_queue": "task_queue",
    "host": "api_host",
    "api_port": "api_port",
    "temporal_port": "temporal_port",
    "ui_port": "ui_port",
}

STARTUP_DEADLINE_SECONDS = 60.0


class StartupFailed(RuntimeError):
    pass


class _Parser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit code 2, as for every other error."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pastools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", type=Path, help="state directory (PASTOOLS_DATA_DIR)")
        sub.add_argument("--database-url", help="jobs database URL (DATABASE_URL)")
        sub.add_argument("--namespace", help="Temporal namespace (PASTOOLS_TEMPORAL_NAMESPACE)")
        sub.add_argument("--task-queue", help="Temporal task queue (PASTOOLS_TASK_QUEUE)")

    up = commands.add_parser("up", help="run the whole platform locally: Temporal, worker, API")
    common(up)
    up.add_argument("--host", help="address the API binds to (PASTOOLS_API_HOST)")
    up.add_argument("--api-port", type=int, help="API port (PASTOOLS_API_PORT)")
    up.add_argument("--temporal-port", type=int, help="Temporal gRPC port (PASTOOLS_TEMPORAL_PORT)")
    up.add_argument("--ui-port", type=int, help="Temporal Web UI port (PASTOOLS_UI_PORT)")
    no_auth(up)

    api = commands.add_parser("api", help="serve the REST API (and run the mirror)")
    common(api)
    api.add_argument("--temporal-address", help="host:port (PASTOOLS_TEMPORAL_ADDRESS)")
    api.add_argument("--host", help="bind address (PASTOOLS_API_HOST)")
    api.add_argument("--api-port", type=int, help="port (PASTOOLS_API_PORT)")
    no_auth(api)

    worker = commands.add_parser("worker", help="run the job workflows and activities")
    common(worker)
    worker.add_argument("--temporal-address", help="host:port (PASTOOLS_TEMPORAL_ADDRESS)")

    mirror = commands.add_parser(
        "mirror",
        help="keep the jobs table equal to Temporal, apart from the API",
        description="Runs the mirror alone (give the APIs PASTOOLS_MIRROR_ENABLED=false if "
        "they should not). Any number may run: one at a time works, through a lease in the "
        "jobs database. Stops cleanly on SIGINT or SIGTERM.",
    )
    common(mirror)
    mirror.add_argument("--temporal-address", help="host:port (PASTOOLS_TEMPORAL_ADDRESS)")

    doctor = commands.add_parser(
        "doctor",
        help="compare the jobs table with Temporal and list every difference",
        description="Exit code: 0 consistent (or everything repaired with --fix), "
        "1 differences remain, 2 the check could not run.",
    )
    common(doctor)
    doctor.add_argument("--temporal-address", help="host:port (PASTOOLS_TEMPORAL_ADDRESS)")
    doctor.add_argument("--fix", action="store_true", help="repair the differences found")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")

    migrate = commands.add_parser("migrate", help="upgrade the jobs database schema")
    migrate.add_argument("--database-url", help="jobs database URL (DATABASE_URL)")
    migrate.add_argument("--data-dir", type=Path, help="state directory (PASTOOLS_DATA_DIR)")
    add_tokens_parser(commands)
    add_jobs_parser(commands)
    return parser


def no_auth(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without authentication: every caller is admin (PASTOOLS_AUTH_ENABLED=false)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    base = Settings()
    updates = {
        field: value
        for flag, field in _OVERRIDES.items()
        if (value := getattr(args, flag, None)) is not None
    }
    if getattr(args, "no_auth", False):
        updates["auth_enabled"] = False
    if args.command == "up" and "temporal_address" not in updates:
        port = updates.get("temporal_port", base.temporal_port)
        updates["temporal_address"] = f"127.0.0.1:{port}"
    # Validate the merged values as if they came from the environment.
    return Settings.model_validate({**base.model_dump(), **updates})


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "jobs":
        # A client of the API: none of the platform's own settings apply.
        from pastools_jobs.jobs_cli.commands import run_jobs

        raise SystemExit(run_jobs(args))
    configure_logging("text")
    try:
        settings = settings_from(args)
        configure_logging(settings.log_format)
        if args.command in _TRACED:
            start_tracing(settings, f"pastools-{args.command}")
        if args.command in ("up", "api") and not settings.auth_enabled:
            print(f"pastools: warning: {NO_AUTH_WARNING}", file=sys.stderr, flush=True)
        if args.command == "doctor":
            from pastools_jobs.doctor_command import run_doctor

            raise SystemExit(run_doctor(settings, fix=args.fix, as_json=args.json))
        if args.command == "tokens":
            run_tokens(settings, args)
        else:
            _COMMANDS[args.command](settings)
    except ValidationError as error:
        first = error.errors()[0]
        _fail(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except (StartupFailed, TemporalBinaryMissing, OSError, JobError) as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        _fail(f"the jobs database refused ({reason}); is it migrated (`pastools migrate`)?")
    except KeyboardInterrupt:
        pass


def _fail(message: str) -> NoReturn:
    print(f"pastools: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_migrate(settings: Settings) -> None:
    upgrade_database(settings.resolved_database_url)


def run_api(settings: Settings) -> None:
    import uvicorn

    from pastools_jobs.api.app import create_app

    checked_storage(settings)
    # uvicorn finishes the requests in flight, then re-raises the SIGTERM that stopped
    # it; reaching this handler means the stop was graceful, which is a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    from uvicorn.config import LOGGING_CONFIG

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        # JSON lines: uvicorn's own loggers then write through the root logger's handler.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
        timeout_graceful_shutdown=10,
        # uvloop's event loop and httptools' parser: about 15 % less CPU per job
        # submission than asyncio's loop and h11 (measured under 32 concurrent clients).
        loop="uvloop",
        http="httptools",
    )


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def run_worker_command(settings: Settings) -> None:
    from pastools_jobs.worker import run_worker

    asyncio.run(run_worker(settings))


def run_mirror_command(settings: Settings) -> None:
    from pastools_jobs.mirror_command import run_mirror_process

    asyncio.run(run_mirror_process(settings))


def run_up(settings: Settings) -> None:
    """Temporal dev server, migrations, worker and API as one process tree.

    Ctrl-C (or SIGTERM) stops the API, then the worker, then Temporal.
    """
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": data_dir})
    storage = checked_storage(settings)
    children: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        children.append(start_dev_server(settings, data_dir / "temporal.log"))
        _wait_for_temporal(settings, children[0])
        upgrade_database(settings.resolved_database_url)
        token = sign_in_token(settings) if settings.auth_enabled else None
        env = _child_env(settings)
        children.append(_spawn("worker", env, data_dir / "worker.log"))
        children.append(_spawn("api", env, data_dir / "api.log"))
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        _wait_for_http(f"{api_url}/healthz", children)
        dashboard = f"{api_url}/login#token={token}" if token else f"{api_url}/"
        print(
            f"PAStools Jobs is up (state in {data_dir}).\n"
            f"  Sign in:         {dashboard}\n"
            f"  API:             {api_url}/api/jobs\n"
            f"  API docs:        {api_url}/docs\n"
            f"  Temporal Web UI: {settings.resolved_ui_url}\n"
            f"  Temporal:        {settings.temporal_address}"
            f" (namespace {settings.temporal_namespace})\n"
            f"  Import files:    {storage.location}/<project>/\n"
            "Logs are in the state directory. Press Ctrl-C to stop.",
            flush=True,
        )
        _supervise(children)
    except KeyboardInterrupt:
        print("Stopping…", flush=True)
    finally:
        for child in reversed(children):
            stop_process(child)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PASTOOLS_DATA_DIR": str(settings.data_dir),
            "PASTOOLS_DATABASE_URL": settings.resolved_database_url,
            "PASTOOLS_TEMPORAL_ADDRESS": settings.temporal_address,
            "PASTOOLS_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "PASTOOLS_TASK_QUEUE": settings.task_queue,
            "PASTOOLS_API_HOST": settings.api_host,
            "PASTOOLS_API_PORT": str(settings.api_port),
            "PASTOOLS_UI_PORT": str(settings.ui_port),
            "PASTOOLS_MIGRATE_ON_START": "false",
            "PASTOOLS_AUTH_ENABLED": "true" if settings.auth_enabled else "false",
        }
    )
    return env


def _spawn(command: str, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pastools_jobs", command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            **child_process_options(),
        )


def _wait_for_temporal(settings: Settings, server: subprocess.Popen[bytes]) -> None:
    from pastools_jobs.worker import connect_when_ready

    async def ready() -> None:
        await connect_when_ready(settings, STARTUP_DEADLINE_SECONDS)

    if server.poll() is not None:
        raise StartupFailed("the Temporal dev server exited at once; see temporal.log")
    try:
        asyncio.run(ready())
    except RuntimeError as error:
        raise StartupFailed(
            f"Temporal did not answer on {settings.temporal_address}: {error}"
        ) from None


def _wait_for_http(url: str, children: list[subprocess.Popen[bytes]]) -> None:
    give_up = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < give_up:
        _check_alive(children)
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise StartupFailed(f"the API did not answer on {url}; see api.log")


def _check_alive(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is not None:
            name = " ".join(str(a) for a in child.args[:4])  # type: ignore[index]
            raise StartupFailed(f"'{name}' exited with code {child.returncode}; see its log")


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    while True:
        _check_alive(children)
        time.sleep(0.5)


_COMMANDS = {
    "up": run_up,
    "api": run_api,
    "worker": run_worker_command,
    "mirror": run_mirror_command,
    "migrate": run_migrate,
}
_TRACED = {"api", "worker", "mirror"}
"""The long-running processes, whose spans are exported when tracing is on."""
