"""CPU seconds of processes, from the kernel's accounting: where a CPU-bound run's time goes.

On two shared cores, throughput is CPU per job; splitting it by process (dev server,
worker, API, the benchmark's own clients) shows which part of the stack a gap is in,
and how much of it is Temporal's own.
"""

import os
import resource
from pathlib import Path

CLIENTS = "clients (bench process)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of `pid` and of every process under it.

    A PostgreSQL server is a postmaster with one backend per connection: the live ones
    are counted from their own accounting, the exited ones from their parent's (the CPU
    of reaped children, fields 16 and 17 of /proc/<pid>/stat). A child reaped between
    the two reads is missed; the benchmark's backends are pooled connections, which
    live as long as the run. Needs /proc/<pid>/task/<tid>/children (Linux 4.2+).
    """
    # The command name, in parentheses, may hold spaces: split after its closing one.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK") + sum(_live_cpu_seconds(c) for c in _children(pid))


def _live_cpu_seconds(pid: int) -> float:
    """A child's CPU, or nothing if it has exited since it was listed."""
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for children in Path(f"/proc/{pid}/task").glob("*/children")
        for child in children.read_text().split()
    ]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU so far of each named process, and of this one (the benchmark's clients)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()} | {CLIENTS: own_cpu_seconds()}
