"""`pastools up`: the whole platform from one command on embedded defaults, stopped by
Ctrl-C with nothing left running, its state kept for the next start; local only, with a
sign-in link carrying a fresh admin token, or without auth only when asked, loudly."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port, port_open
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return found
    for child in map(int, children):
        found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP port is listened on, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


class Up:
    def __init__(self, data_dir: Path, *flags: str) -> None:
        self.ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
        self.log = data_dir.parent / f"up-{self.ports['api']}.log"
        arguments = [
            "--data-dir", str(data_dir),
            "--api-port", str(self.ports["api"]),
            "--temporal-port", str(self.ports["temporal"]),
            "--ui-port", str(self.ports["ui"]),
            *flags,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PASTOOLS_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pastools_jobs", "up", *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=as_from_a_terminal,
            )
        self.url = f"http://127.0.0.1:{self.ports['api']}"
        wait_for(self.printed_urls, timeout=90, interval=0.3, what="pastools up")
        self.tree = descendants(self.process.pid)
        link = re.search(rf"{re.escape(self.url)}/login#token=(\S+)", self.log.read_text())
        self.token = link.group(1) if link else None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def printed_urls(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        return "Press Ctrl-C to stop" in self.log.read_text()

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


def as_from_a_terminal() -> None:
    """Ctrl-C reaches a command started from a terminal; a test run started in the
    background by a non-interactive shell ignores SIGINT, and its children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def test_up_runs_the_platform_and_ctrl_c_stops_everything(data_dir: Path) -> None:
    up = Up(data_dir)
    try:
        output = up.log.read_text()
        for url in (f"{up.url}/api/jobs", f"{up.url}/docs", f"127.0.0.1:{up.ports['ui']}"):
            assert url in output, f"{url} not printed"
        assert up.token, "no sign-in link printed"
        assert listening_addresses(up.ports["api"]) == {LOOPBACK}, "the API is not local only"
        assert httpx.get(f"{up.url}/readyz").json() == {"database": "ok", "temporal": "ok"}
        assert httpx.get(f"http://127.0.0.1:{up.ports['ui']}/").status_code == 200
        assert httpx.get(f"{up.url}/api/jobs").status_code == 401
        job = httpx.post(
            f"{up.url}/api/jobs",
            json={"type": "probe", "project_id": "local", "params": {}},
            headers=up.auth,
        ).json()
        wait_for(
            lambda: (
                httpx.get(f"{up.url}/api/jobs/{job['id']}", headers=up.auth).json()["status"]
                == "completed"
            ),
            what="a job on the local stack",
        )
        assert len(up.tree) >= 3, "expected Temporal, a worker and the API as children"
    finally:
        code = up.interrupt()

    assert code == 0, up.log.read_text()
    assert not [pid for pid in up.tree if alive(pid)], "processes left running after Ctrl-C"
    assert not any(port_open(port) for port in up.ports.values()), "a port is still served"
    assert (data_dir / "temporal.sqlite3").exists()
    assert (data_dir / "jobs.sqlite3").exists()

    again = Up(data_dir)
    try:
        assert again.token and again.token != up.token, "the sign-in token was not renewed"
        gone = httpx.get(f"{again.url}/api/jobs", headers=up.auth)
        assert gone.status_code == 401, "the previous run's sign-in token still works"
        kept = httpx.get(f"{again.url}/api/jobs/{job['id']}", headers=again.auth)
        assert kept.json()["status"] == "completed", "the job was lost across a restart"
        described = subprocess.run(
            [
                str(Path(sys.executable).parent / "temporal"), "workflow", "describe",
                "-w", job["id"], "--address", f"127.0.0.1:{again.ports['temporal']}",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert described.returncode == 0, "Temporal forgot the workflow across a restart"
    finally:
        assert again.interrupt() == 0


def test_up_without_auth_needs_the_flag_and_warns(data_dir: Path) -> None:
    up = Up(data_dir, "--no-auth")
    try:
        output = up.log.read_text()
        assert "warning: authentication is OFF" in output
        assert up.token is None, "a sign-in link without auth"
        assert httpx.get(f"{up.url}/api/jobs").status_code == 200
        assert httpx.get(f"{up.url}/", follow_redirects=False).status_code == 200
        assert "authentication is OFF" in (data_dir / "api.log").read_text()
    finally:
        assert up.interrupt() == 0
