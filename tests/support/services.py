"""Real services for the tests: a Temporal dev server, a PostgreSQL cluster, an
S3-compatible object store, and stacks of worker + API processes running the platform's
own commands against them."""

import functools
import glob
import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from pastools_jobs.config import Settings
from pastools_jobs.devserver import start_dev_server, temporal_binary
from pastools_jobs.process import child_process_options, stop_process
from pastools_jobs.storage import open_storage
from pastools_jobs.storage.base import Storage
from tests.support.waiting import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class TemporalServer:
    settings: Settings
    metrics_port: int
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.process = start_dev_server(
            self.settings,
            self.settings.data_dir / "temporal.log",
            ["--metrics-port", str(self.metrics_port)],
        )

    def requests(self, operation: str) -> int:
        """How many `operation` requests (e.g. ListWorkflowExecutions) the frontend has
        served, from the server's own Prometheus metrics: counted outside every client."""
        metrics = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        wanted = (f'operation="{operation}"', 'service_name="frontend"')
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in metrics.splitlines()
            if line.startswith("service_requests{") and all(label in line for label in wanted)
        )

    @property
    def address(self) -> str:
        return self.settings.temporal_address

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The `temporal` command a user would type, against this server."""
        return subprocess.run(
            [temporal_binary(), *args, "--address", self.address],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def stop(self) -> None:
        stop_process(self.process)

    def start_again(self) -> None:
        """After `stop`: the same port, the same state file."""
        self.__post_init__()
        self.wait_ready()

    def wait_ready(self) -> None:
        wait_for(
            lambda: port_open(self.settings.temporal_port),
            timeout=60,
            what="the Temporal dev server",
        )
        wait_for(
            lambda: (
                self.cli("operator", "namespace", "describe", "default", check=False).returncode
                == 0
            ),
            timeout=60,
            interval=0.5,
            what="the default namespace",
        )


def start_temporal(base: Path) -> TemporalServer:
    port = free_port()
    settings = Settings(
        data_dir=base,
        temporal_port=port,
        ui_port=free_port(),
        temporal_address=f"127.0.0.1:{port}",
    )
    server = TemporalServer(settings, metrics_port=free_port())
    server.wait_ready()
    return server


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run the README's test command")
    return found


@dataclass
class PostgresCluster:
    data: Path
    port: int
    owner: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def log(self) -> Path:
        """The server's log, which `start` appends to."""
        return self.data.parent / "postgres.log"

    def create_database(self, name: str) -> str:
        """A new database named after `name`, and its URL. Unique, so that a fixture set up
        again in the same session (test processes take files in their own order, and a
        session fixture of another parameter may come between) never finds its old one."""
        name = f"{name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @property
    def pid(self) -> int:
        """The postmaster's: the first line of its pid file."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.owner, _postgres_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start (or start again, on the same port) the initialized cluster."""
        base = self.data.parent
        options = f"-p {self.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        # Each line says which database and which process (application_name) it is about.
        options += " -c log_line_prefix='%m [%p] %d %a: '"
        self.pg_ctl("start", "-o", options, "-l", str(self.log))

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast")


def start_postgres(base: Path) -> PostgresCluster:
    """A throwaway cluster; initdb refuses to run as root, so root runs it as `postgres`."""
    base.mkdir(parents=True, exist_ok=True)
    owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        owner = ["runuser", "-u", "postgres", "--"]
    cluster = PostgresCluster(base / "data", free_port(), owner)
    subprocess.run(
        [*owner, _postgres_bin("initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    cluster.start()
    return cluster


TEST_PART_BYTES = 64 << 10
"""Parts of multipart uploads in the tests: small, so that modest files span several."""


@dataclass
class ObjectStore:
    """moto's standalone S3 server: the real protocol (multipart uploads, ranged reads,
    ETags) over HTTP, as MinIO or AWS would answer it, with a small minimum part size."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What a process needs to reach it: boto3's usual variables."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "pastools-tests",
            "AWS_SECRET_ACCESS_KEY": "pastools-tests-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def storage_env(self, bucket: str) -> dict[str, str]:
        """A new bucket, and the settings of a stack that keeps its files there."""
        import boto3

        env = self.client_env
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=bucket)
        return {
            **self.client_env,
            "PASTOOLS_STORAGE_URL": f"s3://{bucket}/jobs",
            "PASTOOLS_STORAGE_PART_BYTES": str(TEST_PART_BYTES),
        }

    def stop(self) -> None:
        stop_process(self.process)


def start_object_store(base: Path) -> ObjectStore:
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "S3_UPLOAD_PART_MIN_SIZE": str(TEST_PART_BYTES),
        "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(8 << 20),
    }
    with (base / "moto.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            **child_process_options(),
        )
    wait_for(lambda: port_open(port), timeout=60, what="the S3 server")
    return ObjectStore(port, process)


@dataclass
class Stack:
    """One deployment of the platform: its own database and task queue, a worker and an API."""

    name: str
    env: dict[str, str]
    base: Path
    api_port: int
    temporal: TemporalServer
    worker: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    admin_token: str = ""
    replicas: list["ApiReplica"] = field(default_factory=list)
    """APIs beyond the first, on other ports: the same database and task queue."""
    worker_replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Workers beyond the first, on the same task queue."""

    @property
    def auth_headers(self) -> dict[str, str]:
        """What every client of the stack sends: the admin token start_stack created."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def tokens(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pastools tokens …`, the platform's own command, against this stack's database."""
        return self.pastools("tokens", *args)

    def pastools(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `pastools` command with this stack's settings."""
        return subprocess.run(
            [sys.executable, "-m", "pastools_jobs", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def create_token(self, role: str, project: str | None = None, name: str | None = None) -> str:
        args = ["create", "--role", role]
        args += ["--project", project] if project else []
        args += ["--name", name] if name else []
        created = self.tokens(*args)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def task_queue(self) -> str:
        return self.env["PASTOOLS_TASK_QUEUE"]

    @property
    def database_url(self) -> str:
        return self.env["PASTOOLS_DATABASE_URL"]

    def client(self, timeout: float | httpx.Timeout = 30) -> httpx.Client:
        """An HTTP client of this stack's API, with its admin token."""
        return httpx.Client(base_url=self.url, headers=self.auth_headers, timeout=timeout)

    def async_client(self, timeout: float | httpx.Timeout = 60) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.auth_headers, timeout=timeout)

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def on_object_store(self) -> bool:
        return "PASTOOLS_STORAGE_URL" in self.env

    @functools.cached_property
    def storage(self) -> Storage:
        """The platform's own storage, as this stack's processes see it."""
        return open_storage(
            Settings(
                data_dir=self.base,
                storage_url=self.env.get("PASTOOLS_STORAGE_URL"),
                storage_part_bytes=int(self.env.get("PASTOOLS_STORAGE_PART_BYTES", 8 << 20)),
            )
        )

    def put_source(self, project_id: str, name: str, content: str | bytes) -> None:
        """An import source of the project's, as a user (or an upload) would leave it."""
        sink = self.storage.upload(project_id, name)
        sink.write(content.encode() if isinstance(content, str) else content)
        sink.commit()

    def _spawn(
        self, command: str, env: dict[str, str] | None = None, log_name: str | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.base / f"{log_name or command}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "pastools_jobs", command],
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                **child_process_options(),
            )

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")

    def kill_worker(self) -> None:
        """SIGKILL: no graceful shutdown, no last heartbeat."""
        assert self.worker is not None
        self.worker.kill()
        self.worker.wait()
        self.worker = None

    def terminate_worker(self, deadline_seconds: float = 30.0) -> int:
        """SIGTERM, the way a service manager stops it; returns the exit code."""
        assert self.worker is not None
        code = _terminate(self.worker, deadline_seconds)
        self.worker = None
        return code

    def terminate_api(self, deadline_seconds: float = 30.0) -> int:
        assert self.api is not None
        code = _terminate(self.api, deadline_seconds)
        self.api = None
        return code

    def start_api(self) -> None:
        self.api = self._spawn("api")
        wait_for(self._api_ready, timeout=60, what=f"the {self.name} API")

    def start_api_replica(self) -> "ApiReplica":
        """One more API of this stack (its mirror included), on a port of its own."""
        port = free_port()
        env = {**self.env, "PASTOOLS_API_PORT": str(port), "PASTOOLS_MIGRATE_ON_START": "false"}
        replica = ApiReplica(port, self._spawn("api", env, f"api-{port}"))
        self.replicas.append(replica)
        wait_for(replica.ready, timeout=60, what=f"the {self.name} API on port {port}")
        return replica

    def start_worker_replica(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """One more worker of this stack; `env` overrides (its own metrics port, say)."""
        name = f"worker-{len(self.worker_replicas) + 2}"
        worker = self._spawn("worker", {**self.env, **(env or {})}, name)
        self.worker_replicas.append(worker)
        return worker

    def start_mirror(self) -> subprocess.Popen[bytes]:
        """`pastools mirror`, the mirror alone, with this stack's settings."""
        return self._spawn("mirror")

    def kill_api(self) -> None:
        """SIGKILL: requests in flight are cut off wherever they are, commits included."""
        assert self.api is not None
        self.api.kill()
        self.api.wait()
        self.api = None

    def stop_api(self) -> None:
        assert self.api is not None
        stop_process(self.api)
        self.api = None

    def _api_ready(self) -> bool:
        assert self.api is not None
        if self.api.poll() is not None:
            raise RuntimeError(f"the {self.name} API exited; see {self.base / 'api.log'}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for replica in self.replicas:
            stop_process(replica.process)
        for process in (self.api, self.worker, *self.worker_replicas):
            if process is not None:
                stop_process(process)


@dataclass
class ApiReplica:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the API on port {self.port} exited; see api-{self.port}.log")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def _terminate(process: subprocess.Popen[bytes], deadline_seconds: float) -> int:
    """SIGTERM and wait; a process still there at the deadline is killed and the test fails."""
    process.terminate()
    try:
        return process.wait(deadline_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {deadline_seconds}s after SIGTERM") from None


UPLOAD_LIMIT = 5_000_000


def start_stack(
    name: str,
    base: Path,
    temporal: TemporalServer,
    database_url: str,
    *,
    worker: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    base.mkdir(parents=True, exist_ok=True)
    api_port = free_port()
    env: dict[str, Any] = {
        **os.environ,
        "PASTOOLS_DATA_DIR": str(base),
        "PASTOOLS_DATABASE_URL": database_url,
        "PASTOOLS_TEMPORAL_ADDRESS": temporal.address,
        "PASTOOLS_TASK_QUEUE": f"pastools-{name}",
        "PASTOOLS_API_PORT": str(api_port),
        "PASTOOLS_UI_PORT": str(temporal.settings.ui_port),
        "PASTOOLS_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT),
        **(extra_env or {}),
    }
    stack = Stack(name, env, base, api_port, temporal)
    stack.start_api()  # it migrates the database, tokens table included
    stack.admin_token = stack.create_token("admin", name="tests")
    if worker:
        stack.start_worker()
    return stack
