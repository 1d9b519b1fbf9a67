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
    """User + system CPU of `pid` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    # The command name, in parentheses, may hold spaces: split after its closing one.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU so far of each named process, and of this one (the benchmark's clients)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()} | {CLIENTS: own_cpu_seconds()}
